/**
 * Checks a whole backup file without writing anything: every member's SHA-256 against SHA256SUMS
 * (each member listed exactly once, none missing), manifest.json and objects.json well formed and
 * naming this registry's buckets, the counts and sizes they state equal to what the file holds, and
 * every object's index entry what the object store will accept and reproduce: its member named after
 * it, its `digest` the member's SHA-256 as the store writes it, header names and values that encode.
 * A restore runs this first, so a corrupted, truncated or hostile file changes nothing.
 */
import type { FileHandle } from 'node:fs/promises'
import { z } from 'zod'
import { ArchiveError, readAll, readArchive } from './read-archive.ts'
import {
  manifestSchema,
  members,
  objectIndexSchema,
  objectMember,
  parseSums,
  type BackupManifest,
  type ObjectIndex,
} from './format.ts'

/** What the object store records for bytes with this SHA-256 (hex): `SHA-256=` + base64url, padded. */
export const objectStoreDigest = (sha256: string) =>
  `SHA-256=${Buffer.from(sha256, 'hex').toString('base64url')}=`

/** An RFC 9110 token: what a NATS (HTTP-style) header name may be. */
const headerName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** A header value the client sends as given: one line, no surrounding space (it trims those). */
const headerValue = (v: string) => !/[\r\n]/.test(v) && v === v.trim()

export interface VerifiedBackup {
  manifest: BackupManifest
  objects: ObjectIndex
  /** Every member's SHA-256, as verified: the writing passes check they read the same bytes. */
  sums: Map<string, string>
}

function parseJson<S extends z.ZodType>(file: string, member: string, bytes: Buffer, schema: S): z.infer<S> {
  let data: unknown
  try {
    data = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new ArchiveError(`${file}: ${member} is not JSON`)
  }
  const parsed = schema.safeParse(data)
  if (!parsed.success)
    throw new ArchiveError(`${file}: ${member} is not a registry backup's: ${z.prettifyError(parsed.error)}`)
  return parsed.data
}

/** Verifies `file`, read from `handle` when given (the restore's one open descriptor). */
export async function verifyBackup(file: string, handle?: FileHandle): Promise<VerifiedBackup> {
  let manifest: BackupManifest | undefined
  let objects: ObjectIndex | undefined
  let sums: Map<string, string> | undefined
  const digests = await readArchive(
    file,
    async (m) => {
      if (m.kind === 'manifest') manifest = parseJson(file, m.name, await readAll(m.chunks), manifestSchema)
      else if (m.kind === 'objectIndex')
        objects = parseJson(file, m.name, await readAll(m.chunks), objectIndexSchema)
      else if (m.kind === 'sums') {
        try {
          sums = parseSums((await readAll(m.chunks)).toString('utf8'))
        } catch (err) {
          throw new ArchiveError(`${file}: ${err instanceof Error ? err.message : String(err)}`)
        }
      }
    },
    handle
  )
  if (!sums) throw new ArchiveError(`${file}: no ${members.sums}`)
  if (!manifest) throw new ArchiveError(`${file}: no ${members.manifest}`)
  if (!objects) throw new ArchiveError(`${file}: no ${members.objectIndex}`)

  const contents = digests.filter((d) => d.kind !== 'sums')
  for (const d of contents) {
    const expected = sums.get(d.name)
    if (!expected) throw new ArchiveError(`${file}: ${d.name} is not listed in ${members.sums}`)
    if (expected !== d.sha256)
      throw new ArchiveError(`${file}: ${d.name} does not match its SHA-256 (corrupted)`)
  }
  const present = new Map(contents.map((d) => [d.name, d]))
  for (const name of sums.keys())
    if (!present.has(name))
      throw new ArchiveError(`${file}: ${name} is listed in ${members.sums} but missing`)

  const kvKeys = contents.filter((d) => d.kind === 'kv').length
  const objectMembers = contents.filter((d) => d.kind === 'object')
  const indexed = new Map<string, ObjectIndex[number]>()
  const names = new Set<string>()
  for (const o of objects) {
    const d = present.get(o.member)
    if (!d || d.kind !== 'object')
      throw new ArchiveError(`${file}: object ${o.name} has no member ${o.member}`)
    if (indexed.has(o.member) || names.has(o.name))
      throw new ArchiveError(`${file}: object ${o.name} is listed twice in ${members.objectIndex}`)
    if (d.size !== o.size || d.sha256 !== o.sha256)
      throw new ArchiveError(
        `${file}: object ${o.name}'s size or SHA-256 differs from ${members.objectIndex}`
      )
    if (o.member !== objectMember(o.name))
      throw new ArchiveError(
        `${file}: object ${o.name} is stored as ${o.member}, not ${objectMember(o.name)}`
      )
    // The store computes the digest of what it receives; the source's must be the same, padded or not.
    if (o.digest !== objectStoreDigest(o.sha256) && o.digest !== objectStoreDigest(o.sha256).slice(0, -1))
      throw new ArchiveError(`${file}: object ${o.name}'s digest ${o.digest} is not its SHA-256`)
    for (const [key, values] of Object.entries(o.headers ?? {}))
      if (!headerName.test(key) || !values.every(headerValue))
        throw new ArchiveError(
          `${file}: object ${o.name} has a header ${JSON.stringify(key)} NATS cannot carry`
        )
    indexed.set(o.member, o)
    names.add(o.name)
  }
  for (const d of objectMembers)
    if (!indexed.has(d.name)) throw new ArchiveError(`${file}: ${d.name} is not in ${members.objectIndex}`)
  const bytes = objectMembers.reduce((n, d) => n + d.size, 0)
  const c = manifest.counts
  if (c.kvKeys !== kvKeys || c.objects !== objectMembers.length || c.objectBytes !== bytes)
    throw new ArchiveError(
      `${file}: ${members.manifest} counts ${c.kvKeys} keys, ${c.objects} objects, ${c.objectBytes} bytes; ` +
        `the file holds ${kvKeys}, ${objectMembers.length}, ${bytes}`
    )
  return { manifest, objects, sums }
}
