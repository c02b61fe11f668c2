/**
 * Watches each region's read mirror of the registry (issue #15).
 *
 * Contract: every `intervalMs` the watchdog samples each mirror against the origin (mirror-stall.ts),
 * reports how far behind it is (`releases_registry_mirror_behind`, the alert RegistryMirrorBehind) and
 * logs a stalled one (behind at every look for `stallAfterMs`); a missing mirror is created. A stalled mirror is not re-created here: on
 * nats-server before 2.12 a new copy of a registry written by compare-and-set stalls at once
 * (mirror-stall.ts), and deleting a stream is an operator's act no service user is allowed. Until an
 * operator deletes it (the runbook), the web services of its region read around it
 * (mirror-freshness.ts). Nothing is reported while either side cannot be reached.
 */
import type { NatsConnection } from '@nats-io/nats-core'
import { jetstreamManager } from '@nats-io/jetstream'
import { Gauge, type Registry } from 'prom-client'
import type { Logger } from '../runtime/logger.ts'
import { ensureRegistryMirrors } from './buckets.ts'
import { lookEvery, MirrorStallJudge, sampleMirror } from './mirror-stall.ts'

export interface MirrorWatchdogOptions {
  regions: readonly string[]
  intervalMs: number
  stallAfterMs: number
  log: Logger
  metrics: Registry
}

/** What one look found for one region's mirror. */
export interface MirrorCheck {
  region: string
  state: 'following' | 'catching-up' | 'stalled' | 'created' | 'unreachable'
  behind?: number
}

function createMirrorMetrics(registry: Registry) {
  return {
    behind: new Gauge({
      name: 'releases_registry_mirror_behind',
      help: "Messages a region's registry mirror is behind Europe's registry, at the last look",
      labelNames: ['region'] as const,
      registers: [registry],
    }),
    stalled: new Gauge({
      name: 'releases_registry_mirror_stalled',
      help: "1 while a region's registry mirror has been behind Europe's at every look for the stall time",
      labelNames: ['region'] as const,
      registers: [registry],
    }),
  }
}

const TIMEOUT_MS = 5_000

export class MirrorWatchdog {
  readonly #nc: NatsConnection
  readonly #o: MirrorWatchdogOptions
  readonly #metrics: ReturnType<typeof createMirrorMetrics>
  readonly #judge: MirrorStallJudge
  #looking?: ReturnType<typeof lookEvery>

  constructor(nc: NatsConnection, o: MirrorWatchdogOptions) {
    this.#nc = nc
    this.#o = o
    this.#metrics = createMirrorMetrics(o.metrics)
    this.#judge = new MirrorStallJudge(o.stallAfterMs)
  }

  start(): void {
    this.#looking = lookEvery(this.#o.intervalMs, () => this.check(Date.now()), this.#o.log)
  }

  async stop(): Promise<void> {
    await this.#looking?.stop()
  }

  /** One look at every mirror (public for tests, which drive the clock). */
  async check(now: number): Promise<MirrorCheck[]> {
    const checks: MirrorCheck[] = []
    for (const region of this.#o.regions) checks.push(await this.#checkOne(region, now))
    return checks
  }

  async #checkOne(region: string, now: number): Promise<MirrorCheck> {
    const jsm = await jetstreamManager(this.#nc, { timeout: TIMEOUT_MS, checkAPI: false })
    const sample = await sampleMirror(jsm, region)
    if (sample === 'unreachable') return { region, state: 'unreachable' }
    if (sample === 'missing') {
      await ensureRegistryMirrors(this.#nc, [region])
      this.#o.log.warn({ region }, 'registry mirror was missing: created')
      return { region, state: 'created' }
    }
    const { behind, stalled, behindForMs } = this.#judge.observe(region, sample, now)
    this.#metrics.behind.set({ region }, behind)
    this.#metrics.stalled.set({ region }, stalled ? 1 : 0)
    if (!stalled) return { region, state: behind === 0 ? 'following' : 'catching-up', behind }
    this.#o.log.warn(
      { region, stream: sample.stream, behind, lastSeq: sample.lastSeq, behindForMs },
      'registry mirror no longer follows Europe (runbook: RegistryMirrorBehind)'
    )
    return { region, state: 'stalled', behind }
  }
}
