/**
 * The registry backup file (contract, format 1): a gzip'd POSIX tar that standard tools read
 * (`tar -tzf`, `tar -xzf`, then `sha256sum -c SHA256SUMS` in the extracted folder). Members, in order:
 *
 *   kv/<key>          one per live key of the registry's KV bucket: the value's bytes, as stored
 *   objects/<name>    one per object of the zips' object store: its bytes (names are `id/version/release/module.zip`)
 *   objects.json      per object: name, member, size, sha256, description, headers, metadata
 *   manifest.json     format, creation time, source cluster, the two buckets' stream configs, counts
 *   SHA256SUMS        `<sha256>  <member>` for every member above, last (it is computed while writing)
 *
 * Everything a restore trusts is checked here first: member names (relative, no `.`/`..` part, under
 * a known prefix), no duplicates, per-kind size bounds, bucket names. Nothing in this file touches NATS.
 */
import { z } from 'zod'
import { registryBuckets } from '#shared/releases.ts'

export const FORMAT = 'vtta-registry-backup'
export const FORMAT_VERSION = 1

export const members = {
  kvPrefix: 'kv/',
  objectPrefix: 'objects/',
  objectIndex: 'objects.json',
  manifest: 'manifest.json',
  sums: 'SHA256SUMS',
} as const

const MiB = 1024 * 1024
/**
 * Bounds a restore enforces before reading a member, and a backup before writing one (so no backup
 * is made that its restore would refuse): a KV value never exceeds NATS' max_payload (1 MiB by
 * default), a zip the release service's own bound (ASSET_MAX_BYTES is far lower), manifest.json
 * stays tiny, objects.json and SHA256SUMS a few hundred bytes per member. A hostile archive cannot
 * make the restore hold or write more than this.
 */
export const maxMemberBytes = {
  kv: 1 * MiB,
  object: 1024 * MiB,
  manifest: 1 * MiB,
  index: 8 * MiB,
} as const

/**
 * Members in one file, all kinds: several times a registry of thousands of versions (each a zip, a
 * manifest, notes and a claim), and what the 8 MiB index files hold at a few hundred bytes each.
 */
export const maxMembers = 50_000

/** The NATS KV key alphabet (what @nats-io/kv accepts), and no leading or trailing dot. */
const kvKeyPattern = /^[-/_=.a-zA-Z0-9]+$/
export const isKvKey = (key: string) => kvKeyPattern.test(key) && !key.startsWith('.') && !key.endsWith('.')

/**
 * A member path a restore accepts: relative, `/`-separated, no empty, `.` or `..` part, printable
 * ASCII without backslashes, at most 1024 characters. The same check keeps a backup from writing one.
 */
export function isSafeMemberPath(path: string): boolean {
  if (path.length === 0 || path.length > 1024) return false
  if (!/^[\x21-\x7e]+$/.test(path) || path.includes('\\')) return false
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..')
}

export type MemberKind = 'kv' | 'object' | 'objectIndex' | 'manifest' | 'sums'

/** What a member is, or null when no member of this format has that name. */
export function memberKind(path: string): MemberKind | null {
  if (!isSafeMemberPath(path)) return null
  if (path === members.objectIndex) return 'objectIndex'
  if (path === members.manifest) return 'manifest'
  if (path === members.sums) return 'sums'
  if (path.startsWith(members.kvPrefix)) return isKvKey(path.slice(members.kvPrefix.length)) ? 'kv' : null
  if (path.startsWith(members.objectPrefix) && path.length > members.objectPrefix.length) return 'object'
  return null
}

export function memberLimit(kind: MemberKind): number {
  switch (kind) {
    case 'kv':
      return maxMemberBytes.kv
    case 'object':
      return maxMemberBytes.object
    case 'manifest':
      return maxMemberBytes.manifest
    case 'objectIndex':
    case 'sums':
      return maxMemberBytes.index
  }
}

export const kvMember = (key: string) => `${members.kvPrefix}${key}`
export const objectMember = (name: string) => `${members.objectPrefix}${name}`

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a hex SHA-256')

export const objectIndexSchema = z.array(
  z.strictObject({
    name: z.string().min(1),
    member: z.string(),
    size: z.number().int().nonnegative(),
    sha256: sha256Hex,
    /** The object store's own digest (`SHA-256=<base64url>`), as it was in the source. */
    digest: z.string(),
    description: z.string().optional(),
    headers: z.record(z.string(), z.array(z.string())).optional(),
    metadata: z.record(z.string(), z.string()).optional(),
  })
)
export type ObjectIndex = z.infer<typeof objectIndexSchema>

/** A JetStream stream config as recorded (only the fields a restore reads are checked). */
const streamConfigSchema = z.looseObject({
  name: z.string(),
  num_replicas: z.number().int().positive(),
  max_bytes: z.number().int().optional(),
})

export const manifestSchema = z.strictObject({
  format: z.literal(FORMAT),
  formatVersion: z.literal(FORMAT_VERSION),
  createdAt: z.iso.datetime(),
  source: z.strictObject({
    /** The URL(s) the backup connected to. */
    servers: z.string(),
    cluster: z.string().nullable(),
    serverName: z.string(),
    serverVersion: z.string(),
  }),
  buckets: z.strictObject({
    kv: z.strictObject({ name: z.literal(registryBuckets.kv), stream: streamConfigSchema }),
    zips: z.strictObject({ name: z.literal(registryBuckets.zips), stream: streamConfigSchema }),
  }),
  counts: z.strictObject({
    kvKeys: z.number().int().nonnegative(),
    objects: z.number().int().nonnegative(),
    objectBytes: z.number().int().nonnegative(),
  }),
})
export type BackupManifest = z.infer<typeof manifestSchema>

/** `sha256sum` output: two spaces between hash and name (text mode), one member a line. */
export const formatSums = (sums: ReadonlyArray<readonly [string, string]>) =>
  sums.map(([member, hash]) => `${hash}  ${member}\n`).join('')

/** Parses SHA256SUMS; throws on a malformed line or a member listed twice. */
export function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>()
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line)
    if (!m) throw new Error(`SHA256SUMS line ${i + 1} is not "<sha256>  <member>"`)
    if (sums.has(m[2]!)) throw new Error(`SHA256SUMS lists ${m[2]} twice`)
    sums.set(m[2]!, m[1]!)
  }
  return sums
}
