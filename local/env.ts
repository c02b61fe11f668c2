/**
 * The configuration `npm start` hands to every service and to the edge: each variable of the
 * backend contract, taken from the caller's environment or a local default (printed at start).
 * The edge's tokens default to the ones generated under `.local/secrets/` (local/edge-secrets.ts).
 */
import { standIns } from './addresses.ts'
import { GITHUB_TEST_SECRET } from './stand-ins/github/index.ts'
import type { EdgeSecrets } from './edge-secrets.ts'

export const secretNames = [
  'GITHUB_WEBHOOK_SECRET',
  'DISCORD_WEBHOOK_URL',
  'DISCORD_OPERATOR_WEBHOOK_URL',
  'ADMIN_TOKEN',
  'PURGE_TOKEN',
  'ORIGIN_CLIENT_SECRET',
] as const

export type LocalEnv = Record<
  | 'GITHUB_WEBHOOK_SECRET'
  | 'GITHUB_API_URL'
  | 'RELEASE_ASSET_HOSTS'
  | 'DISCORD_WEBHOOK_URL'
  | 'DISCORD_OPERATOR_WEBHOOK_URL'
  | 'PUBLIC_BASE_URL'
  | 'IMAGE_SOURCE_HOSTS'
  | 'ADMIN_TOKEN'
  | 'PURGE_TOKEN'
  | 'ORIGIN_CLIENT_ID'
  | 'ORIGIN_CLIENT_SECRET',
  string
>

export function localEnv(
  env: NodeJS.ProcessEnv,
  edgeUrl: string,
  generated: Partial<EdgeSecrets> = {}
): { values: LocalEnv; defaulted: Set<string> } {
  const defaults: LocalEnv = {
    // GitHub's documented test secret; the signed fixture deliveries use it.
    GITHUB_WEBHOOK_SECRET: GITHUB_TEST_SECRET,
    // The local stand-ins (local/stand-ins/), which `npm start` runs.
    GITHUB_API_URL: standIns.github.url,
    RELEASE_ASSET_HOSTS: new URL(standIns.github.url).host,
    DISCORD_WEBHOOK_URL: standIns.discord.webhookUrl,
    DISCORD_OPERATOR_WEBHOOK_URL: standIns.discord.operatorWebhookUrl,
    PUBLIC_BASE_URL: edgeUrl,
    IMAGE_SOURCE_HOSTS:
      'www.dndbeyond.com,media.dndbeyond.com,media-waterdeep.cursecdn.com,images.dndbeyond.com',
    ADMIN_TOKEN: generated.ADMIN_TOKEN ?? '',
    PURGE_TOKEN: generated.PURGE_TOKEN ?? '',
    ORIGIN_CLIENT_ID: generated.ORIGIN_CLIENT_ID ?? '',
    ORIGIN_CLIENT_SECRET: generated.ORIGIN_CLIENT_SECRET ?? '',
  }
  const defaulted = new Set<string>()
  const values = { ...defaults }
  for (const key of Object.keys(defaults) as (keyof LocalEnv)[]) {
    const given = env[key]
    if (given === undefined) defaulted.add(key)
    else values[key] = given
  }
  return { values, defaulted }
}

/** One line per variable; secrets given by the caller are not echoed. */
export function describeLocalEnv({ values, defaulted }: ReturnType<typeof localEnv>): string[] {
  return Object.entries(values).map(([key, value]) => {
    const secret = (secretNames as readonly string[]).includes(key)
    const shown = defaulted.has(key)
      ? `${JSON.stringify(value)} (local default)`
      : secret
        ? '(from your environment)'
        : JSON.stringify(value)
    return `  ${key}=${shown}`
  })
}
