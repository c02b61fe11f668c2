/**
 * The edge's credentials for the local platform, generated on first start and kept in
 * `<LOCAL_DIR>/secrets/edge.json` (mode 0600, never in git: .local/ is ignored), so they survive a
 * restart of `npm start` and `npm run swarm` can read them:
 *   ADMIN_TOKEN            the operator API (the edge)
 *   PURGE_TOKEN            the cache purge only (the edge; the release service bears it)
 *   ORIGIN_CLIENT_ID,
 *   ORIGIN_CLIENT_SECRET   the edge's proof to the datacenters' web services (Access service token)
 * Each is 32 random bytes (base64url), the minimum the edge accepts for its tokens. A value in the
 * caller's environment wins over the file (and is not written to it).
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'

export const edgeSecretNames = [
  'ADMIN_TOKEN',
  'PURGE_TOKEN',
  'ORIGIN_CLIENT_ID',
  'ORIGIN_CLIENT_SECRET',
] as const
export type EdgeSecrets = Record<(typeof edgeSecretNames)[number], string>

const fileSchema = z.strictObject(
  Object.fromEntries(edgeSecretNames.map((n) => [n, z.string().min(43)])) as Record<
    (typeof edgeSecretNames)[number],
    z.ZodString
  >
)

const random = () => randomBytes(32).toString('base64url')

export const edgeSecretsPath = (localDir: string) => join(localDir, 'secrets', 'edge.json')

/**
 * Reads the file, creating it (with new random values) when it is missing; with `create: false` (the
 * scripts that act on a running platform) a missing file is an error instead.
 */
export function loadEdgeSecrets(
  localDir: string,
  opts: { create?: boolean } = {}
): { secrets: EdgeSecrets; created: boolean; path: string } {
  const path = edgeSecretsPath(localDir)
  if (!existsSync(path) && opts.create === false)
    throw new Error(`no ${path}: is \`npm start\` running here (LOCAL_DIR)?`)
  if (existsSync(path)) {
    const parsed = fileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
    if (!parsed.success)
      throw new Error(`${path}: not a valid secrets file (delete it to generate a new one)`)
    return { secrets: parsed.data, created: false, path }
  }
  // Cloudflare Access client ids end in `.access`; the local one looks the same.
  const secrets: EdgeSecrets = {
    ADMIN_TOKEN: random(),
    PURGE_TOKEN: random(),
    ORIGIN_CLIENT_ID: `${randomBytes(32).toString('hex')}.access`,
    ORIGIN_CLIENT_SECRET: random(),
  }
  mkdirSync(join(localDir, 'secrets'), { recursive: true, mode: 0o700 })
  writeFileSync(path, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
  chmodSync(path, 0o600)
  return { secrets, created: true, path }
}
