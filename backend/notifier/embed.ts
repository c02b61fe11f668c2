/**
 * The Discord messages: one embed per packaged release (title, version, compatibility, changelog
 * excerpt, link to the release) and one per rejection, kept within Discord's documented limits
 * (developers/resources/message.mdx "Embed Limits"; test/fixtures/discord/limits.json), which Discord
 * measures after trimming whitespace and enforces with a 400.
 *
 * Everything a module author wrote (title, version, notes, compatibility, rejection reasons that quote
 * them) is shown as plain text: its markdown escaped, and no masked link (`[text](url)`) of theirs
 * survives, so an announcement cannot dress a link to anywhere as one of ours. The only links are
 * ours: the embed's URL (the release on github.com) and the manifest URL.
 */
import { escapeMarkdown } from '@discordjs/formatters'
import type { Compatibility, PackagedEvent, RejectedEvent } from '#shared/releases.ts'

export const discordLimits = {
  content: 2000,
  title: 256,
  description: 4096,
  fields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footerText: 2048,
  authorName: 256,
  /** title + description + field names and values + footer text + author name, all embeds. */
  embedsTotal: 6000,
} as const

export interface Embed {
  title: string
  url?: string
  description?: string
  color: number
  timestamp?: string
  author?: { name: string; url?: string }
  fields: Array<{ name: string; value: string; inline?: boolean }>
  footer?: { text: string }
}

export interface WebhookMessage {
  username: string
  content: string
  allowed_mentions: { parse: string[] }
  embeds: Embed[]
}

const USERNAME = 'vtta.io releases'
const GREEN = 0x2ecc71
const ORANGE = 0xe67e22
const RED = 0xe74c3c

/** Trimmed, and cut with an ellipsis to at most `max` characters (whole code points). */
export function truncate(text: string, max: number): string {
  const t = text.trim()
  const chars = [...t]
  if (chars.length <= max) return t
  if (max <= 1) return chars.slice(0, max).join('')
  const kept = chars
    .slice(0, max - 1)
    .join('')
    .trimEnd()
  // A cut through an escape (`\*`) must not leave a backslash that escapes the ellipsis.
  return `${/(?<!\\)(\\\\)*\\$/.test(kept) ? kept.slice(0, -1) : kept}…`
}

/**
 * An author's text as plain text in Discord: its markdown escaped (headings too, which could pass
 * for our own big print; list markers stay, harmless and common in changelogs), and every square
 * bracket, so no `[text](url)` of theirs renders as a masked link (a bare URL shows as itself).
 */
export function plain(text: string): string {
  return escapeMarkdown(text, { heading: true }).replace(/[[\]]/g, '\\$&')
}

/** Only a link to a release on github.com is ours to show as the embed's link. */
const releaseLink = (url: string | null | undefined) =>
  url && /^https:\/\/github\.com\/[\w.-]+\/[\w.-]+\/releases\//.test(url) ? url : undefined

const length = (s: string | undefined) => (s ? [...s.trim()].length : 0)

/** The characters Discord counts against `embedsTotal`. */
export function embedSize(e: Embed): number {
  return (
    length(e.title) +
    length(e.description) +
    length(e.footer?.text) +
    length(e.author?.name) +
    e.fields.reduce((n, f) => n + length(f.name) + length(f.value), 0)
  )
}

export function describeCompatibility(c: Compatibility): string {
  const parts = [
    c.minimum && `min ${c.minimum}`,
    c.verified && `verified ${c.verified}`,
    c.maximum && `max ${c.maximum}`,
  ].filter(Boolean)
  return parts.length ? parts.join(' · ') : 'not stated'
}

/** Sets the description last, to whatever the other fields leave of the 6000-character budget. */
function withDescription(embed: Embed, text: string): Embed {
  const budget = Math.min(discordLimits.description, discordLimits.embedsTotal - embedSize(embed))
  const description = truncate(text, Math.max(0, budget))
  return description ? { ...embed, description } : embed
}

const field = (name: string, value: string, inline: boolean) => ({
  name: truncate(name, discordLimits.fieldName),
  value: truncate(value || '-', discordLimits.fieldValue),
  inline,
})

export function announcementMessage(e: PackagedEvent): WebhookMessage {
  const beta = e.channel === 'beta'
  const url = releaseLink(e.releaseUrl)
  const embed: Embed = {
    title: truncate(`${plain(e.title)} ${plain(e.version)}${beta ? ' (beta)' : ''}`, discordLimits.title),
    ...(url ? { url } : {}),
    color: beta ? ORANGE : GREEN,
    timestamp: e.packagedAt,
    ...(e.author
      ? {
          author: {
            name: truncate(e.author, discordLimits.authorName),
            url: `https://github.com/${e.author}`,
          },
        }
      : {}),
    fields: [
      field('Version', plain(e.version), true),
      field('Channel', e.channel, true),
      field('Foundry compatibility', plain(describeCompatibility(e.compatibility)), true),
      field(beta ? 'Beta manifest URL' : 'Manifest URL', e.manifestUrl, false),
    ],
    footer: { text: truncate(e.repository, discordLimits.footerText) },
  }
  return {
    username: USERNAME,
    content: truncate(
      `**${plain(e.title)}** ${plain(e.version)} is available${beta ? ' on the beta channel' : ''}.`,
      discordLimits.content
    ),
    allowed_mentions: { parse: [] },
    embeds: [withDescription(embed, e.notes ? plain(e.notes) : 'No release notes.')],
  }
}

export function rejectionMessage(e: RejectedEvent): WebhookMessage {
  const what = plain(
    [e.moduleId ?? e.repository ?? 'a release', e.version ?? e.tag].filter(Boolean).join(' ')
  )
  const url = releaseLink(e.releaseUrl)
  const embed: Embed = {
    title: truncate(`Release not published: ${what}`, discordLimits.title),
    ...(url ? { url } : {}),
    color: RED,
    timestamp: e.rejectedAt,
    fields: [
      field('Reason code', e.code, true),
      ...(e.repository ? [field('Repository', plain(e.repository), true)] : []),
    ],
    ...(e.repository ? { footer: { text: truncate(e.repository, discordLimits.footerText) } } : {}),
  }
  return {
    username: USERNAME,
    content: truncate(`A release of ${what} was not published.`, discordLimits.content),
    allowed_mentions: { parse: [] },
    embeds: [withDescription(embed, plain(e.reason))],
  }
}
