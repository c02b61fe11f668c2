/**
 * `/status.json`: datacenters with their state and last probe, recent changes, the viewer's steering,
 * edge counters; and health as each vantage sees it (issue #16): per datacenter the votes behind its
 * state and every vantage's view of it, and the vantages themselves, each with when its view was last
 * refreshed and whether it is fresh enough to vote. All as the viewer's own vantage last heard it.
 */
import type { LocationHint, ReachableDatacenter } from '#shared/catalogue.ts'
import type { ClientLocation } from '../client-location.ts'
import {
  initialHealth,
  stateOf,
  type DatacenterState,
  type ProbeResult,
  type StateChange,
} from '../steering/health-state.ts'
import { steer } from '../steering/nearest.ts'
import { availability, type RequestHealth } from '../steering/health-view.ts'
import { edgeCounters } from '../http/counters.ts'
import { vantagesOf } from '../vantages/vantage-set.ts'
import { isFresh, staleAfterMs } from '../vantages/verdict.ts'
import type { Votes } from '../vantages/views.ts'

/** A datacenter as one vantage's view holds it. */
export interface ViewOfDatacenter {
  state: DatacenterState
  lastProbe: ProbeResult | null
}

export interface StatusDocument {
  generatedAt: number
  /** `vantage`: the one that serves the viewer, whose snapshot this is (null until one has answered). */
  viewer: ClientLocation & { steeredTo: string | null; fallback: boolean; vantage: string | null }
  datacenters: Array<{
    id: string
    name: string
    lat: number
    lon: number
    weight: number
    state: DatacenterState
    since: number
    /** The viewer's vantage's own last probe. */
    lastProbe: ProbeResult | null
    /** How the fresh views voted on `state` (null until a vantage has answered). */
    votes: Votes | null
    /** By vantage: its view of this datacenter; null when the viewer's vantage has not heard it yet. */
    views: Record<string, ViewOfDatacenter | null>
  }>
  /** One per catalogue region: where it probes from, and when its view was last refreshed (null: never). */
  vantages: Array<{ id: string; site: string; hint: LocationHint; at: number | null; fresh: boolean }>
  changes: StateChange[]
  /** Counters of the isolate that answered (each isolate counts its own requests). */
  edge: ReturnType<typeof edgeCounters>
}

export function statusDocument(
  datacenters: ReachableDatacenter[],
  health: RequestHealth,
  viewer: ClientLocation,
  /** PROBE_INTERVAL_MS: a view older than STALE_AFTER_INTERVALS of them no longer votes. */
  probeIntervalMs: number
): StatusDocument {
  const now = Date.now()
  const { snapshot } = health
  const steering = steer(datacenters, viewer, (dc) => availability(health, dc.id, now))
  const vantages = vantagesOf(datacenters)
  const viewOf = (vantage: string) =>
    (snapshot && Object.hasOwn(snapshot.views, vantage) ? snapshot.views[vantage] : null) ?? null
  return {
    generatedAt: now,
    viewer: {
      ...viewer,
      steeredTo: steering.ranked[0]?.id ?? null,
      fallback: steering.fallback,
      vantage: snapshot?.vantage || null,
    },
    datacenters: datacenters.map((dc) => {
      const health = snapshot?.datacenters[dc.id] ?? initialHealth(now)
      const views: Record<string, ViewOfDatacenter | null> = {}
      for (const vantage of vantages) {
        const h = viewOf(vantage.id)?.datacenters[dc.id]
        views[vantage.id] = h ? { state: stateOf(h), lastProbe: h.lastProbe ?? null } : null
      }
      return {
        id: dc.id,
        name: dc.name,
        lat: dc.lat,
        lon: dc.lon,
        weight: dc.weight ?? 1,
        state: stateOf(health),
        since: health.since,
        lastProbe: health.lastProbe ?? null,
        votes: snapshot?.votes[dc.id] ?? null,
        views,
      }
    }),
    vantages: vantages.map((vantage) => {
      const view = viewOf(vantage.id)
      const at = view && view.at > 0 ? view.at : null
      return {
        id: vantage.id,
        site: vantage.site.id,
        hint: vantage.hint,
        at,
        fresh: view !== null && at !== null && isFresh(view, now, staleAfterMs(probeIntervalMs)),
      }
    }),
    changes: snapshot?.changes ?? [],
    edge: edgeCounters(),
  }
}
