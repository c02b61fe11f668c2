/**
 * Rebuilds the module registry from a backup file (format.ts), in three passes over the file:
 *   1. verify everything (verify.ts): nothing is written unless every checksum and name holds;
 *   2. create the KV bucket and the object store exactly as the release service does
 *      (backend/registry/buckets.ts `ensureRegistryStorage`, with the backup's replicas or
 *      `replicas`, and the zips' max_bytes bound), then write every object;
 *   3. then every KV entry, so no manifest or module record ever points at a zip not yet there.
 *
 * A registry that already holds a key or an object is refused unless `force`: writing a backup over
 * a live registry would put older module records back over newer ones (versions released since the
 * backup would vanish from their module and their version rules would no longer hold), while keys
 * and zips made since would stay, unreferenced. `--force` is for finishing an interrupted restore.
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core'
import { ensureRegistryStorage, openRegistryStorage } from '../../backend/registry/buckets.ts'
import { members } from './format.ts'
import { ArchiveError, readAll, readArchive, type MemberDigest } from './read-archive.ts'
import { objectStoreDigest, verifyBackup, type VerifiedBackup } from './verify.ts'

export class RegistryNotEmptyError extends Error {
  override name = 'RegistryNotEmptyError'
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
      throw new ArchiveError(`${file}: ${d.name} changed while restoring; restore again with --force`)
}

export async function restoreRegistry(
  nc: NatsConnection,
  file: string,
  o: { force?: boolean; replicas?: number; log?: (line: string) => void } = {}
): Promise<RestoreResult> {
  const log = o.log ?? (() => undefined)
  const verified = await verifyBackup(file)
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
  const zipsMaxBytes = manifest.buckets.zips.stream.max_bytes
  const storage = await ensureRegistryStorage(
    nc,
    replicas,
    zipsMaxBytes && zipsMaxBytes > 0 ? { zipsMaxBytes } : {}
  )

  const byMember = new Map(verified.objects.map((obj) => [obj.member, obj]))
  let objects = 0
  let objectBytes = 0
  sameAsVerified(
    file,
    verified,
    await readArchive(file, async (m) => {
      if (m.kind !== 'object') return
      const obj = byMember.get(m.name)!
      const h = natsHeaders()
      for (const [key, values] of Object.entries(obj.headers ?? {})) for (const v of values) h.append(key, v)
      const info = await storage.zips.put(
        {
          name: obj.name,
          ...(obj.description !== undefined ? { description: obj.description } : {}),
          ...(obj.headers ? { headers: h } : {}),
          ...(obj.metadata ? { metadata: obj.metadata } : {}),
        },
        ReadableStream.from(m.chunks)
      )
      // The store computed its own digest of what it received: the source's, if the bytes are.
      if (info.size !== obj.size || info.digest !== objectStoreDigest(obj.sha256))
        throw new Error(
          `object ${obj.name}: stored ${info.size} bytes with digest ${info.digest}, not the backup's`
        )
      objects++
      objectBytes += info.size
    })
  )
  log(`objects: ${objects} (${objectBytes} bytes)`)

  let kvKeys = 0
  sameAsVerified(
    file,
    verified,
    await readArchive(file, async (m) => {
      if (m.kind !== 'kv') return
      await storage.kv.kv.put(m.name.slice(members.kvPrefix.length), await readAll(m.chunks))
      kvKeys++
    })
  )
  log(`kv: ${kvKeys} keys`)
  return { kvKeys, objects, objectBytes, replicas }
}
