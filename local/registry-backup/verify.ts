/**
 * Checks a whole backup file without writing anything: every member's SHA-256 against SHA256SUMS
 * (each member listed exactly once, none missing), manifest.json and objects.json well formed and
 * naming this registry's buckets, the counts and sizes they state equal to what the file holds.
 * A restore runs this first, so a corrupted, truncated or hostile file changes nothing.
 */
import { z } from 'zod'
import { ArchiveError, readAll, readArchive } from './read-archive.ts'
import {
  manifestSchema,
  members,
  objectIndexSchema,
  parseSums,
  type BackupManifest,
  type ObjectIndex,
} from './format.ts'

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

export async function verifyBackup(file: string): Promise<VerifiedBackup> {
  let manifest: BackupManifest | undefined
  let objects: ObjectIndex | undefined
  let sums: Map<string, string> | undefined
  const digests = await readArchive(file, async (m) => {
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
  })
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
