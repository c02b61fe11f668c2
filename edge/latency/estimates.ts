/**
 * What this isolate has measured (issue #16): per edge location and datacenter, an exponentially
 * weighted moving average of how long a successful request took, and the state the choice keeps per
 * edge location (its turn counter, its current leader). Module state, like http/counters.ts: an
 * isolate learns from its own requests, and a new isolate starts cold (it steers by distance).
 *
 * - `record` folds one sample in. The first sample of an estimate is not counted: it is likely to
 *   carry a connection's set-up (a NATS WebSocket, TLS: several round trips), which would take the
 *   average many samples to forget. The next sets the average, later ones weigh EWMA_ALPHA.
 * - An estimate not refreshed for STALE_AFTER_MS counts as cold, and starts afresh (set-up first):
 *   a network that changed while nobody measured it is not averaged with what it was, and the
 *   connection may have closed meanwhile.
 * - Only successes are recorded (steering/failover.ts): a failure's time says nothing about latency,
 *   and the health state deals with failures.
 * - Lookups are two Map reads (edge location, then datacenter), no key built per request.
 */

/** The weight of a new sample: the last ~6 samples dominate, so a change shows within a few. */
export const EWMA_ALPHA = 0.3
/** After this an estimate counts as cold (and is restarted by its next sample). */
export const STALE_AFTER_MS = 10 * 60_000
/** Fresh samples an estimate needs before the choice trusts it. */
export const WARM_SAMPLES = 3

export interface Estimate {
  /** The moving average, in milliseconds (with no sample counted yet: the set-up sample). */
  ms: number
  /** Samples folded in since it (re)started, the set-up sample not counted. */
  samples: number
  /** When the last sample was taken (epoch ms). */
  at: number
}

/** One edge location's estimates and the state of its choices (latency/choose.ts reads it). */
export interface LocationLatency {
  readonly estimates: ReadonlyMap<string, Readonly<Estimate>>
  /** Choices made for this location so far: exploration falls on fixed turns, so tests are exact. */
  readonly turn: number
  /** The datacenter measured best so far, kept until another is clearly better (hysteresis). */
  readonly leader: string | undefined
  /** When an estimate about to go stale was last refreshed out of turn (latency/choose.ts). */
  readonly refreshedAt: number
}

/** What a choice leaves behind for the next one (latency/choose.ts `Choice`). */
export interface ChoiceMade {
  leader: string | undefined
  /** Whether the choice refreshed an estimate about to go stale. */
  refreshed: boolean
}

/** One row of the status page: the estimate of one datacenter from one edge location. */
export interface EstimateRow extends Estimate {
  dc: string
  /** Enough fresh samples to be trusted (WARM_SAMPLES, within STALE_AFTER_MS). */
  warm: boolean
}

interface MutableLocation {
  estimates: Map<string, Estimate>
  turn: number
  leader: string | undefined
  refreshedAt: number
}

export const isStale = (estimate: Readonly<Estimate>, now: number) => now - estimate.at > STALE_AFTER_MS

/** Samples that still count: none once stale. */
export const freshSamples = (estimate: Readonly<Estimate> | undefined, now: number) =>
  estimate && !isStale(estimate, now) ? estimate.samples : 0

export class LatencyTable {
  readonly #locations = new Map<string, MutableLocation>()

  /** The location's state, or undefined when nothing was measured or chosen there yet. */
  at(location: string): LocationLatency | undefined {
    return this.#locations.get(location)
  }

  /** Folds in one sample of `ms` for requests from `location` served by `dc`, taken at `at`. */
  record(location: string, dc: string, ms: number, at: number): void {
    // A clock that went backwards or a bogus reading must not poison the average.
    if (!Number.isFinite(ms) || ms < 0) return
    const estimates = this.#location(location).estimates
    const estimate = estimates.get(dc)
    if (!estimate || isStale(estimate, at)) {
      estimates.set(dc, { ms, samples: 0, at })
      return
    }
    estimate.ms = estimate.samples === 0 ? ms : estimate.ms + EWMA_ALPHA * (ms - estimate.ms)
    estimate.samples++
    estimate.at = Math.max(estimate.at, at)
  }

  /** Commits a choice made for `location` at `now`: the next turn, the leader, the refresh. */
  chose(location: string, choice: ChoiceMade, now: number): void {
    const state = this.#location(location)
    state.turn++
    state.leader = choice.leader
    if (choice.refreshed) state.refreshedAt = now
  }

  /** The estimates from one edge location, in no particular order. */
  rows(location: string, now: number): EstimateRow[] {
    const estimates = this.#locations.get(location)?.estimates
    if (!estimates) return []
    return [...estimates].map(([dc, e]) => ({
      dc,
      ms: e.ms,
      samples: e.samples,
      at: e.at,
      warm: freshSamples(e, now) >= WARM_SAMPLES,
    }))
  }

  #location(location: string): MutableLocation {
    let state = this.#locations.get(location)
    if (!state) {
      state = { estimates: new Map(), turn: 0, leader: undefined, refreshedAt: -Infinity }
      this.#locations.set(location, state)
    }
    return state
  }
}

/** This isolate's table: the request path records into it and chooses from it. */
export const isolateLatency = new LatencyTable()

/** The isolate's estimates from one edge location, for the status page. */
export const latencyRows = (location: string, now = Date.now()): EstimateRow[] =>
  isolateLatency.rows(location, now)
