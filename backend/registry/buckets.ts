/**
 * The registry's JetStream storage: one KV bucket (records and manifests) and one object store (zips).
 * The release service creates them (replicated) at start-up; the web service only binds to them, and
 * reads through the nearest replica (direct get) because a stale read costs at most one cache period.
 */
import type { NatsConnection } from '@nats-io/nats-core'
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { Objm, type ObjectStore } from '@nats-io/obj'
import {
  homePlacement,
  kvStreamName,
  objStreamName,
  registryBuckets,
  registryMirrorBucket,
} from '#shared/releases.ts'
import { JsonKv } from './kv-store.ts'

export interface RegistryStorage {
  kv: JsonKv
  zips: ObjectStore
}

const TIMEOUT_MS = 5_000

/**
 * Creates the buckets when missing (idempotent) and opens them for consistent reads and writes.
 * The zips' object store is bounded (`zipsMaxBytes`, JetStream max_bytes: a full store refuses new
 * zips instead of filling the disk); an existing store is brought to that bound.
 */
export async function ensureRegistryStorage(
  nc: NatsConnection,
  replicas: number,
  o: { zipsMaxBytes?: number; homeRegion?: string | undefined } = {}
): Promise<RegistryStorage> {
  const js = jetstream(nc, { timeout: TIMEOUT_MS })
  const placement = homePlacement(o.homeRegion)
  await new Kvm(js).create(registryBuckets.kv, {
    ...placement,
    replicas,
    history: 1,
    storage: 'file',
    description: 'vtta.io module registry: module records, manifests, release claims',
  })
  // Reads through the stream leader (no direct get): every decision is read-then-compare-and-set,
  // and a read from a lagging replica would only make the compare-and-set fail and retry.
  const kv = await new Kvm(js).open(registryBuckets.kv)
  const zips = await new Objm(js).create(registryBuckets.zips, {
    ...placement,
    replicas,
    storage: 'file',
    description: 'vtta.io module registry: packaged zips',
    ...(o.zipsMaxBytes ? { max_bytes: o.zipsMaxBytes } : {}),
  })
  if (o.zipsMaxBytes) {
    // Objm.create keeps an existing bucket's definition: set the bound on one made before it existed.
    const jsm = await jetstreamManager(nc, { timeout: TIMEOUT_MS, checkAPI: false })
    const stream = objStreamName(registryBuckets.zips)
    const info = await jsm.streams.info(stream)
    if (info.config.max_bytes !== o.zipsMaxBytes)
      await jsm.streams.update(stream, { ...info.config, max_bytes: o.zipsMaxBytes })
  }
  return { kv: new JsonKv(kv), zips }
}

/**
 * Creates the registry KV's read mirror in each region (idempotent): R1 on a server tagged
 * `region:<id>`, `mirror_direct` (nats.js sets it for a KV mirror), so that region's direct gets of
 * the registry are answered by its own copy. The home region's own replicas need none.
 */
export async function ensureRegistryMirrors(nc: NatsConnection, regions: readonly string[]): Promise<void> {
  const kvm = new Kvm(jetstream(nc, { timeout: TIMEOUT_MS }))
  for (const region of regions)
    await kvm.create(registryMirrorBucket(region), {
      mirror: { name: registryBuckets.kv },
      ...homePlacement(region),
      replicas: 1,
      history: 1,
      storage: 'file',
      description: `vtta.io module registry: read mirror in ${region}`,
    })
}

/**
 * The registry as a web service outside the home region reads it (issue #15): the KV through its
 * region's read mirror (`KV_registry-<region>`, R1 in the region), whose own direct gets are answered
 * in the region whether or not the home region can be reached, also after a restart there (the
 * mirror answers gets for its origin's name only while it hears from the origin). The zips stay in
 * the home region (not mirrored: the CDN caches them), bound without asking it. Null while the mirror
 * does not exist yet (the release service makes it).
 */
export async function openRegistryMirror(
  nc: NatsConnection,
  region: string
): Promise<RegistryStorage | null> {
  const jsm = await jetstreamManager(nc, { timeout: TIMEOUT_MS, checkAPI: false })
  const stream = kvStreamName(registryMirrorBucket(region))
  try {
    // Answered by the mirror's own server, in the region.
    await jsm.streams.info(stream)
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return null
    throw err
  }
  // checkAPI false: the account-info check is answered by the meta leader, in the home region.
  const js = jetstream(nc, { timeout: TIMEOUT_MS, checkAPI: false })
  // A mirror keeps its origin's subjects ($KV.registry.<key>): the origin's bucket, read from the mirror's stream.
  const kv = await new Kvm(js).open(registryBuckets.kv, { allow_direct: true, streamName: stream })
  const zips = await new Objm(js).open(registryBuckets.zips, false)
  return { kv: new JsonKv(kv), zips }
}

/**
 * Binds to existing buckets; null while the release service has never created them. `direct: false`
 * reads through the KV's stream leader, in the home region: a direct get may be answered by a region's
 * mirror (`mirror_direct`), which is what a reader bypassing a stale mirror must avoid.
 */
export async function openRegistryStorage(
  nc: NatsConnection,
  o: { direct?: boolean } = {}
): Promise<RegistryStorage | null> {
  const jsm = await jetstreamManager(nc, { timeout: TIMEOUT_MS, checkAPI: false })
  try {
    await jsm.streams.info(kvStreamName(registryBuckets.kv))
    await jsm.streams.info(objStreamName(registryBuckets.zips))
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return null
    throw err
  }
  const js = jetstream(nc, { timeout: TIMEOUT_MS })
  const kv = await new Kvm(js).open(registryBuckets.kv, { allow_direct: o.direct ?? true })
  const zips = await new Objm(js).open(registryBuckets.zips)
  return { kv: new JsonKv(kv), zips }
}
