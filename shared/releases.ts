/**
 * The release pipeline's contract, shared by the edge (publishes GitHub deliveries), the release
 * service (consumes them, publishes `packaged`/`rejected`) and the notifier (announces).
 *
 *   edge ── github.release.<action> ──▶ stream GITHUB ──▶ release service (durable consumer `releases`)
 *   release service ── releases.packaged / releases.rejected ──▶ stream RELEASES ──▶ notifier
 *   either ── deadletter.<consumer> ──▶ stream DEADLETTER (what could not be processed, for an operator)
 *
 * Streams are created (or updated) idempotently by the services at start-up from the functions below,
 * so every writer and every test uses one definition. Nothing here imports from edge/ or backend/.
 */
import { z } from 'zod'
import type { Placement, StreamConfig } from '@nats-io/jetstream'
import { subjects } from './subjects.ts'

const SECOND_NS = 1_000_000_000
const HOUR_NS = 3600 * SECOND_NS
const DAY_NS = 24 * HOUR_NS

// ---------------------------------------------------------------------------------------------
// GitHub deliveries (edge → release service)

/** NATS headers the edge sets on every published delivery. The body is the raw delivery bytes. */
export const githubHeaders = {
  /** = hex sha256 of the body: JetStream drops a byte-identical redelivery within the duplicate window. */
  msgId: 'Nats-Msg-Id',
  /** = X-GitHub-Event (`release`). */
  event: 'GitHub-Event',
  /** = X-GitHub-Delivery. */
  delivery: 'GitHub-Delivery',
  /** = X-GitHub-Hook-ID. */
  hookId: 'GitHub-Hook-Id',
} as const

/**
 * The delivery's JetStream message id: the hex SHA-256 of the signed body. GitHub's "Redeliver" keeps
 * the body, so a redelivery is a duplicate; X-GitHub-Delivery is not covered by the signature.
 */
export async function deliveryMsgId(body: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body))
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
}

export const githubStream = {
  name: 'GITHUB',
  subjects: ['github.>'],
  /** What the release service consumes. */
  releaseSubjects: 'github.release.>',
} as const

/** `github.release.<action>`, defined with every other subject in subjects.ts. */
export const githubDeliverySubject = subjects.githubRelease

/**
 * The GITHUB stream: R`replicas`, file storage, deduplication on Nats-Msg-Id (sha256 of the body) for
 * an hour (GitHub's manual redeliveries keep the body; later ones are caught by the release service's
 * own idempotency), deliveries kept three days (GitHub's own redelivery window) for replay and dead-letter copies.
 */
/** Default size bounds of the release streams (GITHUB_STREAM_MAX_BYTES, RELEASE_EVENTS_MAX_BYTES). */
export const streamMaxBytes = { github: 128 * 1024 * 1024, releaseEvents: 32 * 1024 * 1024 } as const

export function githubStreamConfig(replicas: number, maxBytes: number = streamMaxBytes.github): StreamConfig {
  return {
    name: githubStream.name,
    subjects: [...githubStream.subjects],
    retention: 'limits',
    storage: 'file',
    num_replicas: replicas,
    duplicate_window: HOUR_NS,
    max_age: 3 * DAY_NS,
    // Bounded (a full disk must not take the platform down), and reserved up front by JetStream.
    max_bytes: maxBytes,
    // A delivery larger than NATS' max_payload never reaches the stream; the edge answers 413 first.
    max_msg_size: 8 * 1024 * 1024,
    discard: 'old',
  } as StreamConfig
}

// ---------------------------------------------------------------------------------------------
// Release events (release service → notifier)

export const releaseEventsStream = {
  name: 'RELEASES',
  subjects: [subjects.releaseEvents],
  packaged: subjects.releasePackaged,
  rejected: subjects.releaseRejected,
} as const

export function releaseEventsStreamConfig(
  replicas: number,
  maxBytes: number = streamMaxBytes.releaseEvents
): StreamConfig {
  return {
    name: releaseEventsStream.name,
    subjects: [...releaseEventsStream.subjects],
    retention: 'limits',
    storage: 'file',
    num_replicas: replicas,
    duplicate_window: HOUR_NS,
    max_age: 30 * DAY_NS,
    max_bytes: maxBytes,
    discard: 'old',
  } as StreamConfig
}

export const channels = ['stable', 'beta'] as const
export type Channel = (typeof channels)[number]

/** Foundry's `compatibility`, normalised to strings (manifests write `10` or `"13.341"`). */
export const compatibilitySchema = z.strictObject({
  minimum: z.string().max(64).nullable(),
  verified: z.string().max(64).nullable(),
  maximum: z.string().max(64).nullable(),
})
export type Compatibility = z.infer<typeof compatibilitySchema>

/** Longest release-notes text carried in an event (Discord's embed description is 4096). */
export const NOTES_EXCERPT_MAX = 4096

export const packagedEventSchema = z.strictObject({
  moduleId: z.string().min(1).max(100),
  title: z.string().min(1).max(1000),
  version: z.string().min(1).max(64),
  channel: z.enum(channels),
  compatibility: compatibilitySchema,
  /** The release body (GitHub markdown), cut to NOTES_EXCERPT_MAX characters. */
  notes: z.string().max(NOTES_EXCERPT_MAX),
  /** The GitHub release page. */
  releaseUrl: z.url(),
  /** PUBLIC_BASE_URL/modules/<id>/module.json (beta: …/beta/module.json). */
  manifestUrl: z.url(),
  /** PUBLIC_BASE_URL/modules/<id>/<version>/module.zip */
  downloadUrl: z.url(),
  repositoryId: z.number().int().positive(),
  /** `owner/name` */
  repository: z.string().min(1).max(200),
  releaseId: z.number().int().positive(),
  tag: z.string().min(1).max(255),
  /** Release author's GitHub login, when the payload named one. */
  author: z.string().max(100).nullable(),
  packagedAt: z.iso.datetime(),
})
export type PackagedEvent = z.infer<typeof packagedEventSchema>

/** Why a delivery or a release was refused; stable codes for the registry API and notices. */
export const rejectionCodes = [
  'payload_invalid',
  'release_not_found',
  'asset_missing',
  'asset_host_not_allowed',
  'asset_too_large',
  'asset_unavailable',
  'manifest_invalid',
  'manifest_too_large',
  'manifest_too_deep',
  'version_tag_mismatch',
  'zip_invalid',
  'zip_unsafe_path',
  'zip_unsafe_entry',
  'zip_bomb',
  'zip_manifest_missing',
  'zip_manifest_mismatch',
  'module_id_mismatch',
  'module_id_taken',
  'version_exists',
  'version_not_newer',
  'quota_exceeded',
  // The delivery's identity could not be confirmed with GitHub: logged and counted, never announced
  // (nothing says the repository it names had anything to do with it).
  'installation_missing',
  'installation_invalid',
  'repository_not_enrolled',
  'repository_not_found',
] as const
export type RejectionCode = (typeof rejectionCodes)[number]

/** Refusals of a delivery whose repository GitHub did not confirm: no `rejected` event, no notice. */
export const unconfirmedRejectionCodes: ReadonlySet<RejectionCode> = new Set([
  'installation_missing',
  'installation_invalid',
  'repository_not_enrolled',
  'repository_not_found',
  'release_not_found',
])

export const rejectedEventSchema = z.strictObject({
  code: z.enum(rejectionCodes),
  /** One sentence for the module author. */
  reason: z.string().min(1).max(2000),
  /** Null when the delivery itself was unreadable. */
  repositoryId: z.number().int().positive().nullable(),
  repository: z.string().max(200).nullable(),
  releaseId: z.number().int().positive().nullable(),
  tag: z.string().max(255).nullable(),
  moduleId: z.string().max(100).nullable(),
  version: z.string().max(64).nullable(),
  releaseUrl: z.url().nullable(),
  delivery: z.string().max(100).nullable(),
  rejectedAt: z.iso.datetime(),
})
export type RejectedEvent = z.infer<typeof rejectedEventSchema>

/**
 * Nats-Msg-Id of a `packaged` event: one per (repository, release, version, channel), so a release
 * service that crashed after storing and publishes again is deduplicated by the stream.
 */
export const packagedMsgId = (e: Pick<PackagedEvent, 'repositoryId' | 'releaseId' | 'version' | 'channel'>) =>
  `packaged:${e.repositoryId}:${e.releaseId}:${e.version}:${e.channel}`

/**
 * Nats-Msg-Id of a `rejected` event: one per (repository, release, version, code), so a replayed
 * delivery announces nothing new; a delivery too broken to name its release is keyed by its id.
 */
export const rejectedMsgId = (
  e: Pick<RejectedEvent, 'repositoryId' | 'releaseId' | 'version' | 'code' | 'delivery'>
) =>
  e.repositoryId !== null && e.releaseId !== null
    ? `rejected:${e.repositoryId}:${e.releaseId}:${e.version ?? '-'}:${e.code}`
    : `rejected:-:-:-:${e.code}:${e.delivery ?? '-'}`

// ---------------------------------------------------------------------------------------------
// Dead letters (either service → operator)

export const deadLetterStream = {
  name: 'DEADLETTER',
  subjects: ['deadletter.>'],
  /** `deadletter.<consumer>`: `deadletter.releases`, `deadletter.notifier`. */
  subject: (consumer: string) => `deadletter.${consumer}`,
} as const

/** Headers on a dead letter; the body is the original message's body. */
export const deadLetterHeaders = {
  reason: 'Dead-Letter-Reason',
  stream: 'Dead-Letter-Stream',
  sequence: 'Dead-Letter-Sequence',
  subject: 'Dead-Letter-Subject',
  consumer: 'Dead-Letter-Consumer',
  deliveries: 'Dead-Letter-Deliveries',
} as const

export function deadLetterStreamConfig(replicas: number): StreamConfig {
  return {
    name: deadLetterStream.name,
    subjects: [...deadLetterStream.subjects],
    retention: 'limits',
    storage: 'file',
    num_replicas: replicas,
    duplicate_window: HOUR_NS,
    max_age: 30 * DAY_NS,
    max_bytes: 64 * 1024 * 1024,
    discard: 'old',
  } as StreamConfig
}

// ---------------------------------------------------------------------------------------------
// JetStream buckets (the NATS permissions of each service name them too)

/** The module registry: one KV bucket (records, manifests) and one object store (zips). */
export const registryBuckets = {
  kv: 'registry',
  zips: 'module-zips',
} as const

/**
 * Read mirrors of the registry's KV, one per region other than the home region (issue #15): R1, placed
 * by the region's tag, with `mirror_direct`, so a direct get of `KV_registry` issued in that region is
 * answered there (nearest replica) and keeps answering while the home region is out of reach.
 */
export const registryMirrorBucket = (region: string) => `${registryBuckets.kv}-${region}`

/**
 * Where the consistent streams and buckets live: in the home region's cluster, on servers tagged `region:`,
 * so their R3 RAFT groups never cross an ocean. Without a home region (one region), anywhere.
 */
export const homePlacement = (homeRegion: string | undefined): { placement?: Placement } =>
  // The region's NATS cluster carries the region's id (local/nats-config.ts, deploy/nats.conf).
  homeRegion ? { placement: { cluster: homeRegion, tags: [`region:${homeRegion}`] } } : {}

/** The JetStream stream behind a KV bucket and behind an object store. */
export const kvStreamName = (bucket: string) => `KV_${bucket}`
export const objStreamName = (bucket: string) => `OBJ_${bucket}`

/** The notifier's KV bucket: one record per announcement (exactly-once claims). */
export const notifierBucket = 'notifier'

// ---------------------------------------------------------------------------------------------
// Where JetStream keeps what (issue #15)

/** The catalogue's JetStream layout as the services are told it (shared/regions.ts jetStreamLayout). */
export interface JetStreamPlanLayout {
  replicas: number
  homeRegion?: string | undefined
  mirrorRegions?: readonly string[]
}

/** One stream a service creates (a stream, a KV bucket's, the object store's), with its copies and place. */
export interface PlannedStream {
  stream: string
  /** Who creates it (the release and notification streams both, alike). */
  creators: ReadonlyArray<'releases' | 'notifier'>
  num_replicas: number
  placement?: Placement
  /** The stream a read mirror copies. */
  mirrorOf?: string
}

/**
 * Every stream the services create, for a layout: the consistent ones (release streams, the registry's KV
 * and zips, the notifier's claims) with `replicas` copies placed in the home region (homePlacement), the
 * registry's read mirrors R1 in their regions. A statement of what releases and notifier do at start-up
 * (their service.ts, backend/registry/buckets.ts), held to it by test/backend/releases/jetstream-plan.test.ts
 * against a real nats-server; `npm run check:deploy` holds it against the production catalogue.
 */
export function jetStreamPlan(layout: JetStreamPlanLayout): PlannedStream[] {
  const home = { num_replicas: layout.replicas, ...homePlacement(layout.homeRegion) }
  const registry = kvStreamName(registryBuckets.kv)
  return [
    { stream: githubStream.name, creators: ['releases'], ...home },
    { stream: releaseEventsStream.name, creators: ['releases', 'notifier'], ...home },
    { stream: deadLetterStream.name, creators: ['releases', 'notifier'], ...home },
    { stream: registry, creators: ['releases'], ...home },
    { stream: objStreamName(registryBuckets.zips), creators: ['releases'], ...home },
    { stream: kvStreamName(notifierBucket), creators: ['notifier'], ...home },
    ...(layout.mirrorRegions ?? []).map((region) => ({
      stream: kvStreamName(registryMirrorBucket(region)),
      creators: ['releases'] as const,
      num_replicas: 1,
      ...homePlacement(region),
      mirrorOf: registry,
    })),
  ]
}
