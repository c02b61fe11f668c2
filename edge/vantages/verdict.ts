/**
 * The majority verdict over the vantages' views (issue #16), pure so it can be tested alone.
 *
 * - A datacenter is down only when a strict majority of the fresh views that have seen it say down:
 *   one region cut off from it does not take it from the others (a tie is up). A view older than
 *   STALE_AFTER_INTERVALS probe intervals abstains: its vantage is gone or cut off, and what it last
 *   saw is no longer evidence. So does a view that has not observed the datacenter yet (no probe, no
 *   report: a vantage just started), whose "up" would be a default, not a vote. With no vote at all,
 *   nothing says down: up, as a new datacenter.
 * - Each view keeps today's hysteresis (health-state.ts: DOWN_AFTER failures, UP_AFTER probes), so in
 *   effect a datacenter goes down when a majority saw DOWN_AFTER failures, and comes back when
 *   enough views saw UP_AFTER good probes that the majority no longer says down.
 * - Degraded, among the fresh views that say up, by the same strict majority.
 * - Drained is the operator's word, not an observation: every view counts, stale ones too, and the
 *   latest drain or undrain wins (last writer by `drainedAt`; on a tie, drained). It overrides the rest.
 */
import type { DatacenterHealth } from '../steering/health-state.ts'
import type { VantageView, Votes } from './views.ts'

/** How many probe intervals a view may go unrefreshed before it abstains. */
export const STALE_AFTER_INTERVALS = 3

export const staleAfterMs = (probeIntervalMs: number): number => STALE_AFTER_INTERVALS * probeIntervalMs

export interface Verdict {
  up: boolean
  degraded: boolean
  drained: boolean
  /** The stamp of the drain or undrain that won; absent when no view has one. */
  drainedAt?: number
  votes: Votes
}

/** Whether a view's entry rests on anything: a probe, or a count of failures or successes. */
const hasObserved = (h: DatacenterHealth): boolean =>
  h.lastProbe !== undefined || h.failures > 0 || h.successes > 0

export const isFresh = (view: VantageView, now: number, staleMs: number): boolean => now - view.at <= staleMs

/**
 * The verdict on each of `datacenters` from every vantage's view (a vantage's own among them); null
 * for a vantage never heard from, which abstains.
 */
export function verdictOf(
  datacenters: readonly string[],
  vantageViews: ReadonlyArray<VantageView | null>,
  now: number,
  staleMs: number
): Record<string, Verdict> {
  const views = vantageViews.filter((view): view is VantageView => view !== null)
  const fresh = views.filter((view) => isFresh(view, now, staleMs))
  const verdicts: Record<string, Verdict> = {}
  for (const dc of datacenters) {
    const votes: Votes = { up: 0, down: 0, abstain: vantageViews.length - fresh.length }
    let degraded = 0
    for (const view of fresh) {
      const h = Object.hasOwn(view.datacenters, dc) ? view.datacenters[dc] : undefined
      if (!h || !hasObserved(h)) votes.abstain++
      else if (!h.up) votes.down++
      else {
        votes.up++
        if (h.degraded) degraded++
      }
    }
    const drain = latestDrain(dc, views)
    verdicts[dc] = {
      up: votes.down <= votes.up,
      degraded: degraded * 2 > votes.up,
      drained: drain?.drained ?? false,
      ...(drain?.drainedAt === undefined ? {} : { drainedAt: drain.drainedAt }),
      votes,
    }
  }
  return verdicts
}

/** The view entry whose drain or undrain is the latest (drained on a tie); undefined when none has one. */
function latestDrain(dc: string, views: readonly VantageView[]): DatacenterHealth | undefined {
  let latest: DatacenterHealth | undefined
  for (const view of views) {
    const h = Object.hasOwn(view.datacenters, dc) ? view.datacenters[dc] : undefined
    if (h?.drainedAt === undefined) continue
    const newer =
      !latest ||
      h.drainedAt > (latest.drainedAt ?? -Infinity) ||
      (h.drainedAt === latest.drainedAt && h.drained && !latest.drained)
    if (newer) latest = h
  }
  return latest
}
