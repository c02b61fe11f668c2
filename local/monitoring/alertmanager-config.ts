/**
 * `npm start`'s Alertmanager configuration: production's deploy/monitoring/alertmanager.yml with only
 * the operator's Discord webhook replaced by the Discord stand-in's, so local alerts take the routes,
 * grouping and inhibitions the operator gets in production.
 *
 * Production's file is a Docker config template (template_driver golang): Docker evaluates every
 * `{{ … }}` action once, when the config is created; the webhook is `{{ secret "…" }}`, and an
 * Alertmanager template inside it is written as a string literal (`{{ "{{ .Status }}" }}`). This
 * renders the same two kinds of action as Docker would (secret → the stand-in's URL, a literal → its
 * text) and refuses any other, so a file Docker would render differently never runs here silently.
 * Pure: returns the file's text.
 */
import { parse, stringify } from 'yaml'
import { z } from 'zod'
import { errorMessage } from '#shared/error-message.ts'

/** The Docker secret production's alertmanager.yml reads the operator's webhook from. */
export const OPERATOR_WEBHOOK_SECRET = 'discord_operator_webhook_url'

/** Go's quoted string literal, read as JSON reads it (the escapes production files use agree). */
const goString = (literal: string): string => z.string().parse(JSON.parse(literal))

/** Docker's template rendering of production's file, for the actions it may contain. */
export function renderDockerTemplate(text: string, secrets: Record<string, string>): string {
  return text.replace(
    /\{\{\s*(?:secret\s+("(?:[^"\\]|\\.)*")|("(?:[^"\\]|\\.)*")|`([^`]*)`)\s*\}\}|\{\{/g,
    (action: string, secret?: string, quoted?: string, raw?: string, offset?: number) => {
      if (secret !== undefined) {
        const name = goString(secret)
        const value = secrets[name]
        if (value === undefined)
          throw new Error(`the template reads the secret ${name}, which npm start has not`)
        return value
      }
      if (quoted !== undefined) return goString(quoted)
      if (raw !== undefined) return raw
      const line = text.slice(0, offset).split('\n').length
      throw new Error(
        `line ${line}: a template action npm start does not render: ${text.slice(offset, (offset ?? 0) + 40)}…`
      )
    }
  )
}

const configSchema = z.looseObject({
  route: z.looseObject({ receiver: z.string() }),
  receivers: z.array(
    z.looseObject({
      name: z.string(),
      discord_configs: z.array(z.looseObject({ webhook_url: z.string().optional() })).optional(),
    })
  ),
})

/**
 * The local configuration from production's file (`source`: its text; `file`: its name for errors):
 * every discord_configs entry sends to `operatorWebhookUrl`.
 */
export function renderAlertmanagerConfig(source: string, file: string, operatorWebhookUrl: string): string {
  let config
  try {
    const rendered = renderDockerTemplate(source, { [OPERATOR_WEBHOOK_SECRET]: operatorWebhookUrl })
    config = configSchema.parse(parse(rendered))
  } catch (error) {
    throw new Error(`${file}: ${errorMessage(error)}`)
  }
  const discord = config.receivers.flatMap((r) => r.discord_configs ?? [])
  // Without one, the operator would hear nothing: better to stop `npm start` saying so.
  if (discord.length === 0) throw new Error(`${file}: no receiver has discord_configs`)
  for (const entry of discord) entry.webhook_url = operatorWebhookUrl
  return (
    `# Written by \`npm start\` (local/monitoring/alertmanager-config.ts) from ${file} on every\n` +
    "# start, the operator webhook replaced by the Discord stand-in's; edits are lost.\n" +
    stringify(config)
  )
}
