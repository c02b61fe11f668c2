import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  announcementMessage,
  discordLimits,
  embedSize,
  plain,
  rejectionMessage,
  truncate,
} from '../../../backend/notifier/embed.ts'
import { embedLimitViolation } from '../../../local/stand-ins/discord.ts'
import type { PackagedEvent, RejectedEvent } from '#shared/releases.ts'

/** Discord's documented limits, as the fixture records them (the fields these tests use). */
const limits = z
  .object({
    content_max_chars: z.number(),
    embeds_total_chars_max: z.number(),
    embed: z.object({
      title: z.number(),
      description: z.number(),
      fields_max: z.number(),
      field_name: z.number(),
      field_value: z.number(),
      footer_text: z.number(),
      author_name: z.number(),
    }),
  })
  .parse(
    JSON.parse(
      readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'discord', 'limits.json'), 'utf8')
    )
  )

const event = (over: Partial<PackagedEvent> = {}): PackagedEvent => ({
  moduleId: 'item-piles',
  title: 'Item Piles',
  version: '3.1.0',
  channel: 'stable',
  compatibility: { minimum: '13', verified: '14', maximum: '14' },
  notes: "## What's Changed\n- Piles of items",
  releaseUrl: 'https://github.com/fantasycalendar/FoundryVTT-ItemPiles/releases/tag/v3.1.0',
  manifestUrl: 'https://vtta.io/modules/item-piles/module.json',
  downloadUrl: 'https://vtta.io/modules/item-piles/3.1.0/module.zip',
  repositoryId: 1,
  repository: 'fantasycalendar/FoundryVTT-ItemPiles',
  releaseId: 2,
  tag: 'v3.1.0',
  author: 'Haxxer',
  packagedAt: '2026-01-01T00:00:00.000Z',
  ...over,
})

describe('Discord embeds', () => {
  it("uses Discord's documented limits (fixtures/discord/limits.json)", () => {
    expect(discordLimits).toMatchObject({
      content: limits.content_max_chars,
      title: limits.embed.title,
      description: limits.embed.description,
      fields: limits.embed.fields_max,
      fieldName: limits.embed.field_name,
      fieldValue: limits.embed.field_value,
      footerText: limits.embed.footer_text,
      authorName: limits.embed.author_name,
      embedsTotal: limits.embeds_total_chars_max,
    })
  })

  it('announces title, version, compatibility, changelog and the release link', () => {
    const m = announcementMessage(event())
    const e = m.embeds[0]!
    expect(e).toMatchObject({
      title: 'Item Piles 3.1.0',
      url: event().releaseUrl,
      // The author's markdown is shown as written, not rendered.
      description: "\\## What's Changed\n- Piles of items",
    })
    expect(e.fields).toEqual(
      expect.arrayContaining([
        { name: 'Version', value: '3.1.0', inline: true },
        { name: 'Foundry compatibility', value: 'min 13 · verified 14 · max 14', inline: true },
        { name: 'Manifest URL', value: 'https://vtta.io/modules/item-piles/module.json', inline: false },
      ])
    )
    expect(m.allowed_mentions).toEqual({ parse: [] })
    expect(embedLimitViolation(m)).toBeNull()
  })

  it('cuts a huge changelog so the embed stays within 4096 and the 6000 total', () => {
    const m = announcementMessage(
      event({ notes: 'x'.repeat(5000), title: 't'.repeat(1000), repository: 'r'.repeat(200) })
    )
    const e = m.embeds[0]!
    expect([...e.description!].length).toBeLessThanOrEqual(limits.embed.description)
    expect(e.description!.endsWith('…')).toBe(true)
    expect([...e.title].length).toBeLessThanOrEqual(limits.embed.title)
    expect(embedSize(e)).toBeLessThanOrEqual(limits.embeds_total_chars_max)
    expect(embedLimitViolation(m)).toBeNull()
  })

  it('counts characters as Discord does: trimmed, whole code points', () => {
    expect(truncate('  abc  ', 3)).toBe('abc')
    expect(truncate('🎲🎲🎲🎲', 3)).toBe('🎲🎲…')
    expect([...truncate('a'.repeat(5000), 4096)].length).toBe(4096)
  })

  it('marks a beta and points at the beta manifest', () => {
    const m = announcementMessage(
      event({ channel: 'beta', manifestUrl: 'https://vtta.io/modules/item-piles/beta/module.json' })
    )
    expect(m.content).toContain('beta channel')
    expect(m.embeds[0]!.fields).toContainEqual({
      name: 'Beta manifest URL',
      value: 'https://vtta.io/modules/item-piles/beta/module.json',
      inline: false,
    })
  })

  it('writes a rejection notice with the reason, within the limits', () => {
    const rejected: RejectedEvent = {
      code: 'version_not_newer',
      reason: 'version 1.0.0 is not newer than 2.0.0'.padEnd(2000, '.'),
      repositoryId: 1,
      repository: 'o/r',
      releaseId: 2,
      tag: 'v1.0.0',
      moduleId: 'm',
      version: '1.0.0',
      releaseUrl: 'https://github.com/o/r/releases/tag/v1.0.0',
      delivery: 'd',
      rejectedAt: '2026-01-01T00:00:00.000Z',
    }
    const m = rejectionMessage(rejected)
    expect(m.embeds[0]!.title).toBe('Release not published: m 1.0.0')
    expect(m.embeds[0]!.description).toMatch(/^version 1\.0\.0 is not newer/)
    expect(embedLimitViolation(m)).toBeNull()
  })

  describe("an author's text is plain text (finding L3)", () => {
    /** A `[text](url)` Discord would render as a masked link: brackets not escaped. */
    const maskedLink = /(?<!\\)\[[^\]]*(?<!\\)\]\(/
    const hostile = {
      title: '**OFFICIAL** [Item Piles](https://evil.example/update)',
      notes: [
        '# Important',
        'Download the fixed build: [vtta.io/item-piles](https://evil.example/x.zip) or',
        '[here](<https://evil.example/y>) and [again](https://evil.example/z "title").',
        '||spoiler|| __underline__ ~~strike~~ `code` > quote',
      ].join('\n'),
    }

    it('escapes markdown and masked links in the title, the content line and the notes', () => {
      const m = announcementMessage(event(hostile))
      const e = m.embeds[0]!
      for (const text of [e.title, e.description!, m.content]) expect(text).not.toMatch(maskedLink)
      expect(e.title).toBe('\\*\\*OFFICIAL\\*\\* \\[Item Piles\\](https://evil.example/update) 3.1.0')
      expect(m.content).toMatch(/^\*\*\\\*\\\*OFFICIAL/)
      expect(e.description).toContain('\\[vtta.io/item-piles\\](https://evil.example/x.zip)')
      expect(e.description).toMatch(/^\\# Important/)
      expect(e.description).toContain('\\|\\|spoiler\\|\\|')
      expect(embedLimitViolation(m)).toBeNull()
    })

    it('keeps only our own links: the release on github.com and the manifest URL', () => {
      const m = announcementMessage(event({ releaseUrl: 'https://evil.example/releases/tag/v3.1.0' }))
      expect(m.embeds[0]!.url).toBeUndefined()
      expect(announcementMessage(event()).embeds[0]!.url).toBe(event().releaseUrl)
    })

    it('escapes compatibility values taken from the manifest', () => {
      const m = announcementMessage(
        event({ compatibility: { minimum: '[13](https://e.x)', verified: null, maximum: null } })
      )
      const compat = m.embeds[0]!.fields.find((f) => f.name === 'Foundry compatibility')!
      expect(compat.value).not.toMatch(maskedLink)
    })

    it('escapes the reason and names of a rejection notice', () => {
      const m = rejectionMessage({
        code: 'manifest_invalid',
        reason: 'module.json: title "[click](https://evil.example)" is **not** allowed',
        repositoryId: 1,
        repository: 'o/r',
        releaseId: 2,
        tag: 'v1.0.0',
        moduleId: 'm',
        version: '1.0.0',
        releaseUrl: 'https://github.com/o/r/releases/tag/v1.0.0',
        delivery: 'd',
        rejectedAt: '2026-01-01T00:00:00.000Z',
      })
      expect(m.embeds[0]!.description).not.toMatch(maskedLink)
      expect(m.embeds[0]!.description).toContain('\\*\\*not\\*\\*')
    })

    it('a cut through an escape leaves no backslash before the ellipsis', () => {
      const cut = truncate(plain('a**'), 3)
      expect(cut).toBe('a…')
      expect(truncate('ab\\\\cd', 5)).toBe('ab\\\\…')
    })
  })
})
