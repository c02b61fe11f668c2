/**
 * What vantages tell each other and the request path (issue #16): a vantage's view is its own
 * per-datacenter health (the hysteresis of steering/health-state.ts, from its own probes and the
 * passive failures of its own requesters), and how each datacenter stands across the views.
 */
import type { DatacenterHealth } from '../steering/health-state.ts'

export interface VantageView {
  /** The vantage whose view this is: its region's id. */
  vantage: string
  /** When its vantage last refreshed it (a round of probes, a report, a drain): how fresh it is. */
  at: number
  /** Increases with every change at its vantage: of two copies with the same `at`, the higher is newer. */
  version: number
  datacenters: Record<string, DatacenterHealth>
}

/** How the fresh views stand on one datacenter; a view that is stale or lacks it abstains. */
export interface Votes {
  up: number
  down: number
  abstain: number
}

/** Whether `offered` is a newer copy of a view than `known`. */
export const isNewer = (offered: VantageView, known: VantageView | undefined): boolean =>
  !known || offered.at > known.at || (offered.at === known.at && offered.version > known.version)
