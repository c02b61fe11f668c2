/**
 * Who may do what on NATS: one user per component, each with explicit publish and subscribe
 * allow-lists, in the application account (and the system account's job users, such as the
 * nats-exporter, in a table of their own: natsSystemPermissions); the nats-server of each datacenter renders this table
 * into its configuration (local/nats-auth/auth-config.ts), so what the local platform enforces is
 * what production enforces.
 *
 * Rules the table follows:
 * - Nothing is anonymous: a connection without a known nkey is refused on every listener.
 * - Each component receives replies only on its own inbox prefix (`_INBOX_<component>`), so no one
 *   can read another component's replies.
 * - Request/reply subjects that carry a datacenter are scoped to the server's own datacenter
 *   (`images.<dc>.transform`): a service can only answer for the datacenter whose server it uses.
 * - JetStream: a service reaches only the streams it owns or reads, never `$JS.API.STREAM.DELETE`;
 *   the edge has no `$JS.API` at all and only publishes deliveries into the GITHUB stream.
 */
import { nkeyAuthenticator, type ConnectionOptions } from '@nats-io/nats-core'
import {
  deadLetterStream,
  githubStream,
  kvStreamName,
  notifierBucket,
  objStreamName,
  registryBuckets,
  registryMirrorBucket,
  releaseEventsStream,
} from './releases.ts'
import { queueGroups, subjects } from './subjects.ts'

export const natsComponents = ['edge', 'web', 'images', 'releases', 'notifier', 'operator'] as const
export type NatsComponent = (typeof natsComponents)[number]

/**
 * Users of the system account (SYS) with a job of their own, each with its permissions below
 * (natsSystemPermissions). The operator's all-powerful `system` user (local/nats-auth) is not one of them.
 */
export const natsSystemComponents = ['nats-exporter'] as const
export type NatsSystemComponent = (typeof natsSystemComponents)[number]

/** The prefix of a component's reply subjects; its connection must be made with it. */
export const inboxPrefix = (component: NatsComponent | NatsSystemComponent): string => `_INBOX_${component}`

/** A NATS user's nkey seed (SU followed by 56 base32 characters), as every config validates it. */
export const nkeySeedPattern = /^SU[A-Z2-7]{56}$/
export const nkeySeedMessage = 'must be a NATS user nkey seed (SU followed by 56 characters)'

/** Connection options that authenticate as `component` with its seed and use its own inbox prefix. */
export function natsUserAuth(
  component: NatsComponent | NatsSystemComponent,
  seed: string
): Pick<ConnectionOptions, 'authenticator' | 'inboxPrefix'> {
  return {
    authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
    inboxPrefix: inboxPrefix(component),
  }
}

/** The application account every component lives in; SYS is the system account (operations only). */
export const natsAccounts = { app: 'VTTA', system: 'SYS' } as const

export interface NatsPermissions {
  publish: { allow: string[]; deny?: string[] }
  subscribe: { allow: string[]; deny?: string[] }
  /** Replies to requests received (responders); `max` messages per request, within `expires`. */
  allowResponses?: { max: number; expires: string }
}

/** Streams (and buckets) a service creates and keeps up to date at start-up. */
const manageStreams = (streams: string[]) =>
  streams.flatMap((s) => [`$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.UPDATE.${s}`])

/** Reading a stream: its info, single messages (also direct gets from the nearest replica). */
const readStreams = (streams: string[]) =>
  streams.flatMap((s) => [
    `$JS.API.STREAM.INFO.${s}`,
    `$JS.API.STREAM.MSG.GET.${s}`,
    `$JS.API.DIRECT.GET.${s}`,
    `$JS.API.DIRECT.GET.${s}.>`,
  ])

/**
 * Consuming a stream: durable and ordered consumers (create, info, next, delete), acknowledgements
 * (`$JS.ACK.<stream>…` from nats-server 2.9; 2.10+ may prefix a domain and an account hash) and flow control.
 */
const consumeStreams = (streams: string[]) =>
  streams.flatMap((s) => [
    `$JS.API.CONSUMER.CREATE.${s}`,
    `$JS.API.CONSUMER.CREATE.${s}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${s}.>`,
    `$JS.API.CONSUMER.INFO.${s}.>`,
    `$JS.API.CONSUMER.DELETE.${s}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${s}.>`,
    `$JS.ACK.${s}.>`,
    `$JS.ACK.*.*.${s}.>`,
    `$JS.FC.${s}.>`,
  ])

/** Removing messages by subject (KV purge, object store delete): only in buckets the service writes. */
const purgeStreams = (streams: string[]) => streams.map((s) => `$JS.API.STREAM.PURGE.${s}`)

const maxDeliveriesAdvisory = (stream: string, consumer: string) =>
  `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer}`

/** Whatever a JetStream user is allowed, it never deletes a stream (an operator's act). */
const neverDeleteStreams = ['$JS.API.STREAM.DELETE.>']

/** Account information: the services' readiness check (`/readyz` asks whether JetStream answers). */
const accountInfo = '$JS.API.INFO'

const registryStreams = [kvStreamName(registryBuckets.kv), objStreamName(registryBuckets.zips)]

/**
 * The permissions of every component's user on the nats-server of datacenter `dc`. `region`: the
 * datacenter's region (its image services also answer the region's transforms); `mirrorRegions`: the
 * regions whose read mirror of the registry the release service keeps (shared/releases.ts).
 */
export function natsPermissions(
  dc: string,
  o: { region?: string; mirrorRegions?: readonly string[] } = {}
): Record<NatsComponent, NatsPermissions> {
  const heartbeat = (service: string) => subjects.heartbeat(dc, service)
  const mirrors = (o.mirrorRegions ?? []).map((r) => kvStreamName(registryMirrorBucket(r)))
  // The web services of a region with a read mirror of the registry read that one (backend/registry/reader.ts).
  const ownMirror =
    o.region !== undefined && (o.mirrorRegions ?? []).includes(o.region)
      ? [kvStreamName(registryMirrorBucket(o.region))]
      : []
  return {
    edge: {
      // Requests to any datacenter (the edge chose it) and deliveries into the GITHUB stream. No
      // $JS.API: a JetStream publish is a plain publish whose acknowledgement comes to the inbox.
      publish: {
        allow: [
          subjects.imageTransform('*'),
          subjects.imageTransformInRegion('*'),
          subjects.ping('*'),
          githubStream.releaseSubjects,
        ],
      },
      subscribe: { allow: [`${inboxPrefix('edge')}.>`] },
    },
    web: {
      publish: {
        allow: [
          heartbeat('web'),
          accountInfo,
          ...readStreams([...registryStreams, ...ownMirror]),
          // Listing keys and reading a zip use ordered (ephemeral) consumers; nothing is written.
          ...consumeStreams([...registryStreams, ...ownMirror]),
        ],
        deny: neverDeleteStreams,
      },
      subscribe: {
        allow: [
          `${inboxPrefix('web')}.>`,
          `${subjects.ping(dc)} ${queueGroups.web}`,
          subjects.heartbeats(dc),
        ],
      },
      allowResponses: { max: 1, expires: '10s' },
    },
    images: {
      publish: { allow: [heartbeat('images'), accountInfo], deny: neverDeleteStreams },
      // Only in the `images` queue group of its own datacenter: nobody else can join it.
      subscribe: {
        allow: [
          `${inboxPrefix('images')}.>`,
          `${subjects.imageTransform(dc)} ${queueGroups.images}`,
          // Its own region's transforms only, in the same queue group.
          ...(o.region ? [`${subjects.imageTransformInRegion(o.region)} ${queueGroups.images}`] : []),
        ],
      },
      // A transformed image larger than max_payload is sent as several messages and a sentinel
      // (IMAGE_REPLY_CHUNK_BYTES may be as small as 64 KiB: a 16 MP PNG then takes up to 1,000).
      allowResponses: { max: 1024, expires: '1m' },
    },
    releases: {
      publish: {
        allow: [
          heartbeat('releases'),
          accountInfo,
          ...manageStreams([githubStream.name, releaseEventsStream.name, deadLetterStream.name]),
          ...manageStreams([...registryStreams, ...mirrors]),
          ...readStreams([githubStream.name, releaseEventsStream.name, deadLetterStream.name]),
          ...readStreams([...registryStreams, ...mirrors]),
          ...consumeStreams([githubStream.name, ...registryStreams]),
          ...purgeStreams(registryStreams),
          `$KV.${registryBuckets.kv}.>`,
          `$O.${registryBuckets.zips}.>`,
          ...releaseEventsStream.subjects,
          deadLetterStream.subject('releases'),
        ],
        deny: neverDeleteStreams,
      },
      subscribe: {
        allow: [`${inboxPrefix('releases')}.>`, maxDeliveriesAdvisory(githubStream.name, 'releases')],
      },
    },
    notifier: {
      publish: {
        allow: [
          heartbeat('notifier'),
          accountInfo,
          ...manageStreams([releaseEventsStream.name, deadLetterStream.name, kvStreamName(notifierBucket)]),
          ...readStreams([releaseEventsStream.name, deadLetterStream.name, kvStreamName(notifierBucket)]),
          ...consumeStreams([releaseEventsStream.name, kvStreamName(notifierBucket)]),
          ...purgeStreams([kvStreamName(notifierBucket)]),
          `$KV.${notifierBucket}.>`,
          deadLetterStream.subject('notifier'),
        ],
        deny: neverDeleteStreams,
      },
      subscribe: {
        allow: [`${inboxPrefix('notifier')}.>`, maxDeliveriesAdvisory(releaseEventsStream.name, 'notifier')],
      },
    },
    // The operator's tools (`npm run swarm`, backups, enrolment): the whole application account.
    operator: {
      publish: { allow: ['>'] },
      subscribe: { allow: ['>'] },
    },
  }
}

/**
 * Server requests the nats-exporter makes, each to one server by id (`$SYS.REQ.SERVER.<id>.<kind>`):
 * read-only monitoring. Not ACCOUNT.* (connections and subjects of the application's clients), not
 * KICK, LDM or RELOAD (2.10+ acts on a server with these), not the other server requests.
 */
export const natsExporterRequests = ['VARZ', 'JSZ', 'ROUTEZ', 'GATEWAYZ'] as const

/**
 * The permissions of the system account's job users. The `*` in `$SYS.REQ.SERVER.*.<kind>` is a
 * server id, and it also matches `PING` (every server answers). Every PING but JSZ is denied. JSZ
 * stays allowed because the exporter asks the stream leader (by name, in the request's filter) for
 * its view of this server's replicas: lag and currency are known to the leader alone. Permissions
 * cannot see a payload, so the filter is the exporter's courtesy, not a limit: whoever holds this
 * seed can make every server build a full JSZ (read-only, the same figures the exporter reads
 * anyway). Asking the leader by id instead would need a map from server names to ids, kept up to
 * date as leaders move; until then the seed is a Docker secret of the exporter's task alone.
 */
export function natsSystemPermissions(): Record<NatsSystemComponent, NatsPermissions> {
  return {
    'nats-exporter': {
      publish: {
        allow: natsExporterRequests.map((kind) => `$SYS.REQ.SERVER.*.${kind}`),
        deny: natsExporterRequests
          .filter((kind) => kind !== 'JSZ')
          .map((kind) => `$SYS.REQ.SERVER.PING.${kind}`),
      },
      subscribe: { allow: [`${inboxPrefix('nats-exporter')}.>`] },
    },
  }
}
