/**
 * The release service: works the GITHUB stream's `releases` consumer (shared by the release
 * service of every datacenter), packages releases into the module registry and publishes
 * `packaged`/`rejected` events. It creates the streams, the consumer and the registry buckets at
 * start-up (idempotently), so the edge's first publish needs one release service to have run.
 */
import { createPrivateKey } from 'node:crypto'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { nuid } from '@nats-io/nats-core'
import { z } from 'zod'
import {
  deadLetterStreamConfig,
  githubStream,
  githubStreamConfig,
  homePlacement,
  releaseEventsStreamConfig,
  streamMaxBytes,
} from '#shared/releases.ts'
import { allowing, parseAllowlist } from '../outbound/allowlist.ts'
import { baseConfigSchema, intVar, regionList, workQueueConfig } from '../runtime/config.ts'
import { runService } from '../runtime/service.ts'
import { ensureRegistryMirrors, ensureRegistryStorage } from '../registry/buckets.ts'
import { RegistryWriter } from '../registry/writer.ts'
import { ReleaseClaims } from './claim.ts'
import { startDurableConsumer } from '../runtime/durable-consumer.ts'
import { TransientError } from './errors.ts'
import { GitHubApp } from './github-api.ts'
import { handleDelivery } from './handle-delivery.ts'
import { createReleaseMetrics } from './metrics.ts'
import { MirrorWatchdog } from '../registry/mirror-watchdog.ts'
import { mirrorCheckConfig } from '../registry/mirror-stall.ts'
import { purgeEdgeCache } from './purge.ts'
import { ensureStream, withStartupRetries } from '../runtime/jetstream-setup.ts'
import { RetryLater } from '../runtime/work-queue.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

/** A PEM RSA private key (env vars often carry its newlines as `\n`). */
const privateKeyPem = z
  .string({ error: 'the GitHub App private key (PEM): set it or GITHUB_APP_PRIVATE_KEY_FILE' })
  .transform((s) => s.replace(/\\n/g, '\n'))
  .refine((pem) => {
    try {
      return createPrivateKey(pem).asymmetricKeyType === 'rsa'
    } catch {
      return false
    }
  }, 'must be the GitHub App RSA private key in PEM (as GitHub gives it)')

const configSchema = baseConfigSchema.extend({
  /** Where our manifests and zips are served (the edge); the rewritten manifest/download URLs start here. */
  PUBLIC_BASE_URL: z.url({ protocol: /^https?$/ }),
  GITHUB_API_URL: z.url({ protocol: /^https?$/ }).default('https://api.github.com'),
  /** The GitHub App this platform is: its id and private key sign the App JWT (github-api.ts). */
  GITHUB_APP_ID: z.coerce.number({ error: 'must be the GitHub App id (a number)' }).int().positive(),
  GITHUB_APP_PRIVATE_KEY: privateKeyPem,
  /**
   * Where assets may be downloaded from (backend/outbound/allowlist.ts): hosts, `*.domain`, or `ip:port`
   * explicit origins; GITHUB_API_URL's origin is always allowed (a host name: at public addresses, on its default port).
   */
  RELEASE_ASSET_HOSTS: z
    .string()
    .default('api.github.com,github.com,objects.githubusercontent.com,release-assets.githubusercontent.com')
    .transform((text, ctx) => {
      const parsed = parseAllowlist(text, 'RELEASE_ASSET_HOSTS')
      if (parsed.ok) return parsed.allowlist
      ctx.addIssue({ code: 'custom', message: parsed.message })
      return z.NEVER
    }),
  /** Bearer token for the edge's cache purge (the edge's PURGE_TOKEN); empty: no purge. */
  PURGE_TOKEN: z.string().default(''),
  ...workQueueConfig(5),
  RELEASES_CONCURRENCY: intVar(2),
  ASSET_TIMEOUT_MS: intVar(60_000, 100),
  MAX_MANIFEST_BYTES: intVar(1 * MiB),
  MAX_ZIP_BYTES: intVar(100 * MiB),
  MAX_UNCOMPRESSED_BYTES: intVar(512 * MiB),
  MAX_ZIP_ENTRIES: intVar(20_000),
  MAX_COMPRESSION_RATIO: intVar(200),
  PURGE_TIMEOUT_MS: intVar(2_000),
  /** Per repository: stored zip bytes and number of versions (quota_exceeded beyond). */
  REPOSITORY_QUOTA_BYTES: intVar(1 * GiB),
  REPOSITORY_QUOTA_VERSIONS: intVar(500),
  /** JetStream max_bytes (reserved up front, so they must fit the server's or account's storage). */
  GITHUB_STREAM_MAX_BYTES: intVar(streamMaxBytes.github),
  RELEASE_EVENTS_MAX_BYTES: intVar(streamMaxBytes.releaseEvents),
  REGISTRY_ZIPS_MAX_BYTES: intVar(8 * GiB),
  /**
   * Regions (other than the home region) that get a read mirror of the registry's KV, comma-separated:
   * the regions of the catalogue with a JetStream server (issue #15). Empty: no mirror.
   */
  REGISTRY_MIRROR_REGIONS: regionList(),
  ...mirrorCheckConfig,
})

await runService({
  name: 'releases',
  config: configSchema,
  async start({ config, log, nc, metrics, inFlight }) {
    const jsm = await jetstreamManager(nc, { timeout: 5_000, checkAPI: false })
    const js = jetstream(nc, { timeout: 5_000 })
    const replicas = config.JETSTREAM_REPLICAS
    const home = config.JETSTREAM_HOME_REGION
    const placed = homePlacement(home)
    await ensureStream(
      jsm,
      { ...githubStreamConfig(replicas, config.GITHUB_STREAM_MAX_BYTES), ...placed },
      log
    )
    await ensureStream(
      jsm,
      { ...releaseEventsStreamConfig(replicas, config.RELEASE_EVENTS_MAX_BYTES), ...placed },
      log
    )
    await ensureStream(jsm, { ...deadLetterStreamConfig(replicas), ...placed }, log)
    const consumer = 'releases'
    const storage = await withStartupRetries('registry buckets', log, () =>
      ensureRegistryStorage(nc, replicas, { zipsMaxBytes: config.REGISTRY_ZIPS_MAX_BYTES, homeRegion: home })
    )
    if (config.REGISTRY_MIRROR_REGIONS.length > 0)
      await withStartupRetries('registry mirrors', log, () =>
        ensureRegistryMirrors(nc, config.REGISTRY_MIRROR_REGIONS)
      )
    const registry = new RegistryWriter(storage)
    const releaseMetrics = createReleaseMetrics(metrics.registry)
    const purgeTarget = {
      publicBaseUrl: config.PUBLIC_BASE_URL,
      purgeToken: config.PURGE_TOKEN,
      timeoutMs: config.PURGE_TIMEOUT_MS,
    }
    const allowlist = allowing(config.RELEASE_ASSET_HOSTS, new URL(config.GITHUB_API_URL))

    const deps = {
      js,
      registry,
      claims: new ReleaseClaims(
        registry.kv,
        `${config.DC}/${process.pid}/${nuid.next()}`,
        config.ACK_WAIT_MS
      ),
      github: new GitHubApp({
        apiUrl: config.GITHUB_API_URL,
        appId: config.GITHUB_APP_ID,
        privateKey: config.GITHUB_APP_PRIVATE_KEY,
        timeoutMs: config.ASSET_TIMEOUT_MS,
      }),
      assets: { allowlist, timeoutMs: config.ASSET_TIMEOUT_MS },
      limits: {
        maxManifestBytes: config.MAX_MANIFEST_BYTES,
        maxZipBytes: config.MAX_ZIP_BYTES,
        zip: {
          maxEntries: config.MAX_ZIP_ENTRIES,
          maxUncompressedBytes: config.MAX_UNCOMPRESSED_BYTES,
          maxRatio: config.MAX_COMPRESSION_RATIO,
          ratioFloorBytes: 1 * MiB,
        },
        quota: { maxBytes: config.REPOSITORY_QUOTA_BYTES, maxVersions: config.REPOSITORY_QUOTA_VERSIONS },
      },
      publicBaseUrl: config.PUBLIC_BASE_URL,
      log,
      metrics: releaseMetrics,
      changed(paths: string[]) {
        // After the fact and off the delivery's path; shutdown still waits for it.
        void inFlight.track(async () => {
          releaseMetrics.purges.inc({ result: await purgeEdgeCache(purgeTarget, paths, log) })
        })
      },
    }

    const queue = await startDurableConsumer({
      nc,
      jsm,
      js,
      registry: metrics.registry,
      stream: githubStream.name,
      consumer,
      filterSubject: githubStream.releaseSubjects,
      concurrency: config.RELEASES_CONCURRENCY,
      ackWaitMs: config.ACK_WAIT_MS,
      maxDeliver: config.MAX_DELIVER,
      log,
      inFlight,
      async handle(item) {
        try {
          await handleDelivery(deps, item)
        } catch (err) {
          if (err instanceof TransientError && err.retryAfterMs !== undefined)
            throw new RetryLater(err.message, Math.min(600_000, Math.max(1_000, err.retryAfterMs)))
          throw err
        }
      },
    })
    const watchdog =
      config.REGISTRY_MIRROR_REGIONS.length > 0
        ? new MirrorWatchdog(nc, {
            regions: config.REGISTRY_MIRROR_REGIONS,
            intervalMs: config.REGISTRY_MIRROR_CHECK_MS,
            stallAfterMs: config.REGISTRY_MIRROR_STALL_MS,
            log,
            metrics: metrics.registry,
          })
        : undefined
    watchdog?.start()
    if (!config.PURGE_TOKEN) log.warn('PURGE_TOKEN is empty: the edge cache is not purged after a release')
    return {
      async stop() {
        await Promise.all([queue.stop(), watchdog?.stop()])
      },
    }
  },
})
