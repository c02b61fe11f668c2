/**
 * Whether the web service may read its region's registry mirror (issue #15).
 *
 * Contract: every `intervalMs` it samples the mirror against Europe's registry (mirror-stall.ts). Once
 * the mirror has been behind at every look for `stallAfterMs` it is `stale`, and the reader reads Europe's
 * registry through its stream leader instead, across the ocean but current; as soon as a look finds the
 * mirror level it is read again. While Europe cannot be reached the mirror is read as it is:
 * a copy a partition old beats no answer; while the mirror does not exist (being re-created), Europe's is read. A stalled mirror would otherwise hide every version packaged
 * since, for good (nats-server before 2.12 drops the registry's compare-and-set writes: mirror-stall.ts).
 */
import type { NatsConnection } from '@nats-io/nats-core'
import { jetstreamManager } from '@nats-io/jetstream'
import { Gauge, type Registry } from 'prom-client'
import type { Logger } from '../runtime/logger.ts'
import { lookEvery, MirrorStallJudge, sampleMirror } from './mirror-stall.ts'

export interface MirrorFreshnessOptions {
  region: string
  intervalMs: number
  stallAfterMs: number
  log: Logger
  metrics?: Registry
}

const TIMEOUT_MS = 5_000

export class MirrorFreshness {
  readonly #nc: NatsConnection
  readonly #o: MirrorFreshnessOptions
  readonly #judge: MirrorStallJudge
  readonly #gauge: Gauge<'region'> | undefined
  #stale = false
  #looking?: ReturnType<typeof lookEvery>

  constructor(nc: NatsConnection, o: MirrorFreshnessOptions) {
    this.#nc = nc
    this.#o = o
    this.#judge = new MirrorStallJudge(o.stallAfterMs)
    this.#gauge =
      o.metrics &&
      new Gauge({
        name: 'web_registry_mirror_bypassed',
        help: "1 while the web service reads Europe's registry because its region's mirror no longer follows",
        labelNames: ['region'] as const,
        registers: [o.metrics],
      })
  }

  /** Whether reads should go to Europe's registry rather than the region's mirror. */
  get stale(): boolean {
    return this.#stale
  }

  start(): void {
    this.#looking = lookEvery(this.#o.intervalMs, () => this.check(Date.now()), this.#o.log)
  }

  async stop(): Promise<void> {
    await this.#looking?.stop()
  }

  /** One look (public for tests, which drive the clock); the resulting `stale`. */
  async check(now: number): Promise<boolean> {
    const jsm = await jetstreamManager(this.#nc, { timeout: TIMEOUT_MS, checkAPI: false })
    const sample = await sampleMirror(jsm, this.#o.region)
    // Europe unreachable: keep reading the mirror. No mirror (re-created by the release service): Europe.
    if (typeof sample === 'string') return this.#set(sample === 'missing', sample)
    const judged = this.#judge.observe(this.#o.region, sample, now)
    return this.#set(judged.stalled, judged.behind)
  }

  #set(stale: boolean, why: number | string): boolean {
    if (stale !== this.#stale)
      this.#o.log.warn(
        { region: this.#o.region, behind: why },
        stale
          ? "registry mirror no longer follows Europe: reading Europe's registry"
          : "reading the region's registry mirror again"
      )
    this.#stale = stale
    this.#gauge?.set({ region: this.#o.region }, stale ? 1 : 0)
    return stale
  }
}
