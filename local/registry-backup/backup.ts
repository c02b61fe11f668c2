/**
 * Backs the module registry up into one file (format.ts) from a running cluster, stopping nothing.
 *
 * Order, chosen so that every record a module record references is in the backup. A release run
 * (backend/releases/package.ts) claims its `release.*` record, stores the zip, then the
 * `manifest.*` record, binds `repo.*` on a first release, commits `module.<id>` (compare-and-set),
 * then writes `notes.*` and marks its claim packaged. The backup therefore reads, each after listing
 * the keys anew:
 *   1. the `release.*` claims: one read as packaged had its module commit and notes done before;
 *   2. the `module.*` records: each names only versions whose zip, manifest and binding were
 *      written before it was read;
 *   3. every other key: listed after step 2, so all of those are in the list.
 * Then every object: a committed zip is never deleted, so each zip a module record names is there.
 * After both passes the backup checks what step 2 read: every version's manifest record and zip
 * must be in the file, or the backup fails (it never writes a registry that serves a version it
 * cannot restore). Records written after their step are simply not in this backup, or are there
 * unreferenced (a manifest or zip of a version committed after step 2): harmless, as in the live
 * registry while a release runs. Notes are written after the commit and are optional to readers.
 *
 * Deletes and history: the bucket keeps one revision per key (history 1); a deleted key has no
 * value to restore and is left out, so it is absent after a restore, as it reads now. Revisions and
 * creation times are not kept: nothing in the registry compares revisions across time (every
 * compare-and-set re-reads first).
 *
 * Zips are streamed from the object store into the archive one at a time (never the whole registry
 * in memory); the file is written to `<out>.tmp-<pid>`, flushed, then renamed over `<out>`.
 */
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import { once } from 'node:events'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import tar from 'tar-stream'
import type { NatsConnection } from '@nats-io/nats-core'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { Objm, type ObjectInfo } from '@nats-io/obj'
import { kvStreamName, objStreamName, registryBuckets } from '#shared/releases.ts'
import { moduleRecordSchema } from '../../backend/registry/records.ts'
import { registryKeys } from '../../backend/registry/names.ts'
import {
  FORMAT,
  FORMAT_VERSION,
  formatSums,
  isKvKey,
  kvMember,
  maxMembers,
  memberKind,
  memberLimit,
  members,
  objectMember,
  type BackupManifest,
  type ObjectIndex,
} from './format.ts'

const TIMEOUT_MS = 10_000
/** `release.<repository>.<release>.<version>` claims (backend/registry/names.ts `registryKeys.release`). */
const releasePrefix = 'release.'

export interface BackupResult {
  file: string
  manifest: BackupManifest
  bytes: number
}

/** Writes entries into a tar pack, hashing each; the pack is drained by the caller's pipeline. */
class HashingPack {
  readonly pack = tar.pack()
  readonly sums: Array<[string, string]> = []

  /** One member from bytes in memory (KV values, the index files). */
  async add(name: string, bytes: Uint8Array, mtime = new Date()): Promise<void> {
    await this.stream(name, bytes.length, mtime, [bytes])
  }

  /** One member streamed from `chunks`, which must add up to exactly `size` bytes. */
  async stream(
    name: string,
    size: number,
    mtime: Date,
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>
  ): Promise<string> {
    const kind = memberKind(name)
    if (!kind) throw new Error(`refusing to write member ${JSON.stringify(name)}`)
    // The restore's bounds (format.ts): a backup it would refuse is not worth writing.
    if (size > memberLimit(kind))
      throw new Error(`${name} is ${size} bytes, over the ${memberLimit(kind)} a restore accepts`)
    if (this.sums.length >= maxMembers)
      throw new Error(`more than ${maxMembers} members, over what a restore accepts (format.ts)`)
    const hash = createHash('sha256')
    let written = 0
    let finished!: Promise<void>
    const entry = (() => {
      let done!: (err?: Error | null) => void
      finished = new Promise<void>((resolve, reject) => (done = (err) => (err ? reject(err) : resolve())))
      return this.pack.entry({ name, size, mtime, type: 'file', mode: 0o644 }, done)
    })()
    for await (const chunk of chunks) {
      hash.update(chunk)
      written += chunk.length
      if (written > size) break
      // Backpressure: wait until the gzip side has taken what the pack buffers.
      if (!entry.write(chunk)) await once(entry, 'drain')
    }
    if (written !== size) {
      entry.destroy(new Error(`${name}: read ${written} bytes, expected ${size}`))
      throw new Error(`${name}: read ${written} bytes, expected ${size}`)
    }
    entry.end(undefined) // streamx: no final chunk
    await finished
    const hex = hash.digest('hex')
    this.sums.push([name, hex])
    return hex
  }
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n')

/** Headers of an object as plain JSON (MsgHdrs is a class). */
function headersOf(info: ObjectInfo): Record<string, string[]> | undefined {
  const h = info.headers
  if (!h) return undefined
  const out: Record<string, string[]> = {}
  for (const key of h.keys()) out[key] = h.values(key)
  return Object.keys(out).length ? out : undefined
}

export async function backupRegistry(
  nc: NatsConnection,
  out: string,
  o: {
    servers: string
    log?: (line: string) => void
    /** Called after each KV listing, before its keys are read (tests make a release happen there). */
    afterListing?: () => Promise<void>
  } = { servers: '' }
): Promise<BackupResult> {
  const log = o.log ?? (() => undefined)
  const jsm = await jetstreamManager(nc, { timeout: TIMEOUT_MS })
  const js = jetstream(nc, { timeout: TIMEOUT_MS })
  const [kvStream, objStream] = await Promise.all([
    jsm.streams.info(kvStreamName(registryBuckets.kv)),
    jsm.streams.info(objStreamName(registryBuckets.zips)),
  ]).catch((err: unknown) => {
    throw new Error(
      `the registry's streams cannot be read (${err instanceof Error ? err.message : String(err)}): ` +
        'has a release service ever started on this cluster?'
    )
  })
  const kv = await new Kvm(js).open(registryBuckets.kv)
  const zips = await new Objm(js).open(registryBuckets.zips)

  const tmp = `${out}.tmp-${process.pid}`
  const packer = new HashingPack()
  const writing = pipeline(packer.pack, createGzip(), createWriteStream(tmp))
  // The pipeline's rejection is awaited below; until then it must not count as unhandled.
  writing.catch(() => undefined)
  try {
    // 1. KV, in the order the header explains.
    const referenced = new Map<string, string>()
    const manifests = new Map<string, string>()
    const written = new Set<string>()
    const phases: Array<(key: string) => boolean> = [
      (key) => key.startsWith(releasePrefix),
      (key) => key.startsWith(registryKeys.modulePrefix),
      () => true,
    ]
    for (const phase of phases) {
      const keys: string[] = []
      for await (const key of await kv.keys()) if (!written.has(key) && phase(key)) keys.push(key)
      await o.afterListing?.()
      for (const key of keys.sort()) {
        const entry = await kv.get(key)
        if (!entry || entry.operation !== 'PUT') continue // deleted since it was listed
        if (!isKvKey(key)) throw new Error(`KV key ${JSON.stringify(key)} cannot be a member name`)
        await packer.add(kvMember(key), entry.value, entry.created)
        written.add(key)
        if (!key.startsWith(registryKeys.modulePrefix)) continue
        const record = moduleRecordSchema.safeParse(entry.json())
        if (!record.success) continue
        const id = key.slice(registryKeys.modulePrefix.length)
        for (const v of record.data.versions) {
          referenced.set(v.zip.object, `${key} ${v.version}`)
          manifests.set(registryKeys.manifest(id, v.version, v.releaseId), `${key} ${v.version}`)
        }
      }
    }
    const kvKeys = written.size
    const noManifest = [...manifests].filter(([key]) => !written.has(key))
    if (noManifest.length)
      throw new Error(
        `inconsistent registry: ${noManifest.length} version(s) name a manifest record that is not in the ` +
          `bucket, e.g. ${noManifest
            .slice(0, 3)
            .map(([key, by]) => `${key} (${by})`)
            .join(', ')}`
      )
    log(`kv: ${kvKeys} keys`)

    // 2. Objects, streamed one at a time.
    const index: ObjectIndex = []
    let objectBytes = 0
    const infos = (await zips.list()).sort((a, b) => a.name.localeCompare(b.name))
    for (const info of infos) {
      if (info.options?.link)
        throw new Error(`object ${info.name} is a link: the registry never makes links, refusing to guess`)
      const result = await zips.get(info.name)
      if (!result) continue // deleted since it was listed (a refused release's rollback)
      const member = objectMember(result.info.name)
      const sha256 = await packer.stream(member, result.info.size, new Date(result.info.mtime), result.data)
      // The object store checks its own digest as it reads; a mismatch ends here.
      const failed = await result.error
      if (failed) throw new Error(`object ${info.name}: ${failed.message}`)
      index.push({
        name: result.info.name,
        member,
        size: result.info.size,
        sha256,
        digest: result.info.digest,
        ...(result.info.description ? { description: result.info.description } : {}),
        ...(headersOf(result.info) ? { headers: headersOf(result.info) } : {}),
        ...(result.info.metadata && Object.keys(result.info.metadata).length
          ? { metadata: result.info.metadata }
          : {}),
      })
      objectBytes += result.info.size
    }
    log(`objects: ${index.length} (${objectBytes} bytes)`)
    const have = new Set(index.map((i) => i.name))
    const missing = [...referenced].filter(([object]) => !have.has(object))
    if (missing.length)
      throw new Error(
        `inconsistent registry: ${missing.length} version(s) name a zip that is not in the store, e.g. ` +
          missing
            .slice(0, 3)
            .map(([object, by]) => `${object} (${by})`)
            .join(', ')
      )

    // 3. The index, the manifest, the checksums.
    await packer.add(members.objectIndex, json(index))
    const info = nc.info
    const manifest: BackupManifest = {
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      source: {
        servers: o.servers,
        cluster: info?.cluster ?? null,
        serverName: info?.server_name ?? '',
        serverVersion: info?.version ?? '',
      },
      buckets: {
        kv: { name: registryBuckets.kv, stream: kvStream.config },
        zips: { name: registryBuckets.zips, stream: objStream.config },
      },
      counts: { kvKeys, objects: index.length, objectBytes },
    }
    await packer.add(members.manifest, json(manifest))
    const sums = new TextEncoder().encode(formatSums(packer.sums))
    // SHA256SUMS is not listed in itself; gzip's CRC still covers its bytes.
    await packer.add(members.sums, sums)
    packer.sums.pop()
    packer.pack.finalize()
    await writing
    // Flushed to disk before the rename: a crash leaves the old backup or the whole new one.
    const handle = await open(tmp, 'r+')
    let bytes: number
    try {
      await handle.sync()
      bytes = (await handle.stat()).size
    } finally {
      await handle.close()
    }
    await rename(tmp, out)
    return { file: out, manifest, bytes }
  } catch (err) {
    packer.pack.destroy()
    await writing.catch(() => undefined)
    await rm(tmp, { force: true })
    throw err
  }
}
