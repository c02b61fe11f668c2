/**
 * Rebuilds the module registry from a backup file (format.ts), in three passes over the file, all
 * through one open descriptor (a file renamed over the path meanwhile is never read):
 *   1. verify everything (verify.ts): nothing is written unless every checksum and name holds;
 *   2. create the KV bucket and the object store exactly as the release service does
 *      (backend/registry/buckets.ts `ensureRegistryStorage`, with the backup's replicas or
 *      `replicas`, and the zips' max_bytes bound: REGISTRY_ZIPS_MAX_BYTES, or the file's if
 *      lower, never a larger one a file asks for), then write every object;
 *   3. then every KV entry, so no manifest or module record ever points at a zip not yet there.
 * Passes 2 and 3 check every member against the verified SHA-256 again: a KV value before it is
 * put, a zip as it is streamed (removed again if it differs). A failure after writing began is a
 * RestoreInterruptedError saying what failed and what the cluster holds; `--force` finishes it.
 *
 * A registry that already holds a key or an object is refused unless `force`: writing a backup over
 * a live registry would put older module records back over newer ones (versions released since the
 * backup would vanish from their module and their version rules would no longer hold), while keys
 * and zips made since would stay, unreferenced. `--force` is for finishing an interrupted restore.
 */
import { createHash, type Hash } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core'
import { errnoCode, errorMessage } from '#shared/error-message.ts'
import { ensureRegistryStorage, openRegistryStorage } from '../../backend/registry/buckets.ts'
import { members } from './format.ts'
import { ArchiveError, readAll, readArchive, type MemberDigest } from './read-archive.ts'
import { objectStoreDigest, verifyBackup, type VerifiedBackup } from './verify.ts'

export class RegistryNotEmptyError extends Error {
  override name = 'RegistryNotEmptyError'
}

/** The release service's default REGISTRY_ZIPS_MAX_BYTES (backend/releases/service.ts). */
export const DEFAULT_ZIPS_MAX_BYTES = 8 * 1024 ** 3

export interface RestoreOptions {
  force?: boolean
  replicas?: number
  /** The zips' store bound (REGISTRY_ZIPS_MAX_BYTES); the file's own is used only when lower. */
  zipsMaxBytes?: number
  log?: (line: string) => void
}

export interface RestoreResult {
  kvKeys: number
  objects: number
  objectBytes: number
  replicas: number
}

/** Live keys and objects of the registry on this cluster (0, 0 when its streams do not exist). */
export async function registryContents(nc: NatsConnection): Promise<{ kvKeys: number; objects: number }> {
  const storage = await openRegistryStorage(nc)
  if (!storage) return { kvKeys: 0, objects: 0 }
  let kvKeys = 0
  for await (const key of await storage.kv.kv.keys()) if (key) kvKeys++
  return { kvKeys, objects: (await storage.zips.list()).length }
}

/** The pass read the same bytes as the verification did (the file did not change meanwhile). */
function sameAsVerified(file: string, verified: VerifiedBackup, digests: MemberDigest[]): void {
  for (const d of digests)
    if (d.kind !== 'sums' && verified.sums.get(d.name) !== d.sha256)
      throw new ArchiveError(`${file}: ${d.name} changed since it was verified`)
}

/** A restore that stopped after it began writing: what failed and what the cluster holds now. */
export class RestoreInterruptedError extends Error {
  override name = 'RestoreInterruptedError'
}

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')

async function* hashing(chunks: AsyncIterable<Uint8Array>, hash: Hash): AsyncIterable<Uint8Array> {
  for await (const chunk of chunks) {
    hash.update(chunk)
    yield chunk
  }
}

export async function restoreRegistry(
  nc: NatsConnection,
  file: string,
  o: RestoreOptions = {}
): Promise<RestoreResult> {
  // One descriptor for every pass: what is verified is what is written, even if the path changes.
  const handle = await open(file, 'r').catch((err: unknown) => {
    throw new ArchiveError(`${file}: cannot be opened (${errnoCode(err) ?? errorMessage(err)})`)
  })
  try {
    return await restoreFrom(nc, file, handle, o)
  } finally {
    await handle.close()
  }
}

async function restoreFrom(
  nc: NatsConnection,
  file: string,
  handle: FileHandle,
  o: RestoreOptions
): Promise<RestoreResult> {
  const log = o.log ?? (() => undefined)
  const verified = await verifyBackup(file, handle)
  const { manifest } = verified
  log(
    `${file}: verified (${manifest.counts.kvKeys} keys, ${manifest.counts.objects} objects, ` +
      `made ${manifest.createdAt} from ${manifest.source.serverName || manifest.source.servers})`
  )
  const present = await registryContents(nc)
  if ((present.kvKeys > 0 || present.objects > 0) && !o.force)
    throw new RegistryNotEmptyError(
      `the registry is not empty (${present.kvKeys} keys, ${present.objects} objects): restoring over it ` +
        'would put older module records over newer ones; restore into an empty cluster, or pass --force'
    )
  const replicas = o.replicas ?? manifest.buckets.kv.stream.num_replicas
  // The store's bound is this deployment's (REGISTRY_ZIPS_MAX_BYTES), never more than the file asks.
  const bound = o.zipsMaxBytes ?? DEFAULT_ZIPS_MAX_BYTES
  const recorded = manifest.buckets.zips.stream.max_bytes
  const zipsMaxBytes = recorded && recorded > 0 ? Math.min(recorded, bound) : bound
  if (manifest.counts.objectBytes > zipsMaxBytes)
    throw new Error(
      `the backup's zips take ${manifest.counts.objectBytes} bytes, over the object store's bound of ` +
        `${zipsMaxBytes} (REGISTRY_ZIPS_MAX_BYTES): raise it to restore this file`
    )

  let stage = 'creating the bucket and the object store'
  let objects = 0
  let objectBytes = 0
  let kvKeys = 0
  try {
    const storage = await ensureRegistryStorage(nc, replicas, { zipsMaxBytes })
    stage = 'writing the zips'
    const byMember = new Map(verified.objects.map((obj) => [obj.member, obj]))
    sameAsVerified(
      file,
      verified,
      await readArchive(
        file,
        async (m) => {
          if (m.kind !== 'object') return
          const obj = byMember.get(m.name)!
          const h = natsHeaders()
          for (const [key, values] of Object.entries(obj.headers ?? {}))
            for (const v of values) h.append(key, v)
          const hash = createHash('sha256')
          const info = await storage.zips.put(
            {
              name: obj.name,
              ...(obj.description !== undefined ? { description: obj.description } : {}),
              ...(obj.headers ? { headers: h } : {}),
              ...(obj.metadata ? { metadata: obj.metadata } : {}),
            },
            ReadableStream.from(hashing(m.chunks, hash))
          )
          // The store computed its own digest of what it received: the verified one, if the bytes are.
          if (
            hash.digest('hex') !== obj.sha256 ||
            info.size !== obj.size ||
            info.digest !== objectStoreDigest(obj.sha256)
          ) {
            await storage.zips.delete(obj.name).catch(() => undefined)
            throw new ArchiveError(`${file}: ${m.name} changed since it was verified`)
          }
          objects++
          objectBytes += info.size
        },
        handle
      )
    )
    log(`objects: ${objects} (${objectBytes} bytes)`)

    stage = 'writing the KV entries'
    sameAsVerified(
      file,
      verified,
      await readArchive(
        file,
        async (m) => {
          if (m.kind !== 'kv') return
          const value = await readAll(m.chunks)
          // Checked before it is written: a record is never put from bytes that were not verified.
          if (sha256Hex(value) !== verified.sums.get(m.name))
            throw new ArchiveError(`${file}: ${m.name} changed since it was verified`)
          await storage.kv.kv.put(m.name.slice(members.kvPrefix.length), value)
          kvKeys++
        },
        handle
      )
    )
    log(`kv: ${kvKeys} keys`)
  } catch (err) {
    const c = manifest.counts
    const state =
      kvKeys > 0
        ? `every zip and ${kvKeys} of ${c.kvKeys} KV entries are written, so some modules may be missing or old`
        : objects > 0
          ? `${objects} of ${c.objects} zips are written and no KV entry, so the registry serves nothing yet`
          : 'nothing of the backup is written yet (the registry streams may exist, empty)'
    throw new RestoreInterruptedError(
      `restore stopped while ${stage}: ${errorMessage(err)}. The cluster is left partly restored: ${state}. ` +
        'Fix the cause, then run the restore again with --force to finish it',
      { cause: err }
    )
  }
  return { kvKeys, objects, objectBytes, replicas }
}
