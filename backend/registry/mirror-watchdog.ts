/**
 * Keeps each region's read mirror of the registry following Europe (issue #15).
 *
 * Contract: every `intervalMs` the watchdog compares each mirror's last sequence with the origin's.
 * A mirror that stays behind without advancing for `stallAfterMs`, while both answer, is deleted and
 * created again; it then copies the registry afresh, and until it has, that region's direct gets are
 * answered by Europe's replicas (the same queue group), so no reader sees a stale copy for longer. A
 * missing mirror is created. Nothing is done while either side cannot be reached: that is a partition,
 * which the mirror rides out by itself.
 *
 * Why: nats-server 2.9.10 was seen to leave the `us` mirror behind for good after a partition of the
 * origin's leader. The mirror's upstream consumer kept sending idle heartbeats, which keep the mirror's
 * `active` fresh, yet delivered nothing; a heartbeat only makes the mirror retry once the consumer has
 * delivered something (server/stream.go, processInboundMirrorMsg). So `active` and `lag` cannot tell
 * a stall; only a last sequence that stands still behind the origin can.
 *
 * Every release service runs it. Two that decide at once both re-create the mirror, which costs one
 * more copy and nothing else; a mirror younger than `stallAfterMs` is never judged.
 */
import type { NatsConnection } from '@nats-io/nats-core'
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError, type StreamInfo } from '@nats-io/jetstream'
import { Counter, Gauge, type Registry } from 'prom-client'
import { kvStreamName, registryBuckets, registryMirrorBucket } from '#shared/releases.ts'
import type { Logger } from '../runtime/logger.ts'
import { ensureRegistryMirrors } from './buckets.ts'

export interface MirrorWatchdogOptions {
  regions: readonly string[]
  intervalMs: number
  stallAfterMs: number
  log: Logger
  metrics: Registry
}

/** What one look found for one region's mirror. */
export type MirrorCheck =
  | { region: string; state: 'following' | 'catching-up' | 'unreachable'; behind?: number }
  | { region: string; state: 'recreated' | 'created'; behind?: number }

interface Watched {
  created: string
  lastSeq: number
  /** Since when the mirror has stood still behind the origin (undefined: it has not). */
  stillSince?: number
}

export function createMirrorMetrics(registry: Registry) {
  return {
    behind: new Gauge({
      name: 'releases_registry_mirror_behind',
      help: "Messages a region's registry mirror is behind Europe's registry, at the last look",
      labelNames: ['region'] as const,
      registers: [registry],
    }),
    recreated: new Counter({
      name: 'releases_registry_mirror_recreated_total',
      help: "Region's registry mirrors re-created because they stood still behind Europe's registry",
      labelNames: ['region'] as const,
      registers: [registry],
    }),
  }
}

const TIMEOUT_MS = 5_000

const notFound = (err: unknown) =>
  err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound

export class MirrorWatchdog {
  readonly #nc: NatsConnection
  readonly #o: MirrorWatchdogOptions
  readonly #metrics: ReturnType<typeof createMirrorMetrics>
  readonly #watched = new Map<string, Watched>()
  #timer?: NodeJS.Timeout
  #running?: Promise<unknown>

  constructor(nc: NatsConnection, o: MirrorWatchdogOptions) {
    this.#nc = nc
    this.#o = o
    this.#metrics = createMirrorMetrics(o.metrics)
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.check(Date.now())
        .catch((err: unknown) =>
          this.#o.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'mirror check failed')
        )
        .finally(() => (this.#running = undefined))
    }, this.#o.intervalMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#running
  }

  /** One look at every mirror (exported for tests, which drive the clock). */
  async check(now: number): Promise<MirrorCheck[]> {
    const jsm = await jetstreamManager(this.#nc, { timeout: TIMEOUT_MS, checkAPI: false })
    let origin: StreamInfo
    try {
      origin = await jsm.streams.info(kvStreamName(registryBuckets.kv))
    } catch {
      return this.#o.regions.map((region) => ({ region, state: 'unreachable' }))
    }
    const checks: MirrorCheck[] = []
    for (const region of this.#o.regions) checks.push(await this.#checkOne(region, origin, now))
    return checks
  }

  async #checkOne(region: string, origin: StreamInfo, now: number): Promise<MirrorCheck> {
    const jsm = await jetstreamManager(this.#nc, { timeout: TIMEOUT_MS, checkAPI: false })
    const stream = kvStreamName(registryMirrorBucket(region))
    let mirror: StreamInfo
    try {
      mirror = await jsm.streams.info(stream)
    } catch (err) {
      if (!notFound(err)) return { region, state: 'unreachable' }
      await ensureRegistryMirrors(this.#nc, [region])
      this.#o.log.warn({ region, stream }, 'registry mirror was missing: created')
      return { region, state: 'created' }
    }
    const behind = Math.max(0, origin.state.last_seq - mirror.state.last_seq)
    this.#metrics.behind.set({ region }, behind)
    const seen = this.#watched.get(region)
    const watched: Watched =
      seen && seen.created === mirror.created && seen.lastSeq === mirror.state.last_seq
        ? seen
        : { created: mirror.created, lastSeq: mirror.state.last_seq }
    if (behind === 0) delete watched.stillSince
    else watched.stillSince ??= now
    this.#watched.set(region, watched)

    const young = now - Date.parse(mirror.created) < this.#o.stallAfterMs
    if (watched.stillSince === undefined || young || now - watched.stillSince < this.#o.stallAfterMs)
      return { region, state: behind === 0 ? 'following' : 'catching-up', behind }

    this.#o.log.warn(
      {
        region,
        stream,
        behind,
        lastSeq: mirror.state.last_seq,
        originLastSeq: origin.state.last_seq,
        stillForMs: now - watched.stillSince,
        mirror: mirror.mirror,
      },
      'registry mirror stands still behind Europe: re-creating it'
    )
    try {
      await jsm.streams.delete(stream)
    } catch (err) {
      if (!notFound(err)) throw err
    }
    await ensureRegistryMirrors(this.#nc, [region])
    this.#metrics.recreated.inc({ region })
    this.#watched.delete(region)
    return { region, state: 'recreated', behind }
  }
}
