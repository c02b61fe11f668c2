/**
 * `/status.json`: datacenters with their state and last probe, recent changes, the viewer's steering,
 * edge counters; and health as each vantage sees it (issue #16): per datacenter the votes behind its
 * state and every vantage's view of it, and the vantages themselves, each with when its view was last
 * refreshed and whether it is fresh enough to vote. All as the viewer's own vantage last heard it.
 *
 * Where the viewer is served and why (issue #16): the catalogue's regions, each datacenter's latency
 * as this isolate measured it from the viewer's edge location, and the choice the request path would
 * make for the viewer (latency/choose.ts, with the isolate's table and the request's steering mode)
 * with its reason and the datacenters it weighed. Reading the status is no request to a datacenter:
 * the choice is previewed (no exploration, no turn taken) and nothing is recorded.
 */
import type { LocationHint, ReachableDatacenter } from '#shared/catalogue.ts'
import { regionsOf } from '#shared/regions.ts'
import type { ClientLocation } from '../client-location.ts'
import {
  initialHealth,
  stateOf,
  type DatacenterState,
  type ProbeResult,
  type StateChange,
} from '../steering/health-state.ts'
import { clientOrigin, distanceKm } from '../steering/nearest.ts'
import { availability, type RequestHealth } from '../steering/health-view.ts'
import { chooseDatacenters, type SteeringMode, type SteeringReason } from '../latency/choose.ts'
import type { LatencyTable } from '../latency/estimates.ts'
import type { EdgeLocation } from '../placement/edge-location.ts'
import { edgeCounters } from '../http/counters.ts'
import { vantagesOf } from '../vantages/vantage-set.ts'
import { isFresh, staleAfterMs } from '../vantages/verdict.ts'
import type { Votes } from '../vantages/views.ts'

/** A datacenter as one vantage's view holds it. */
export interface ViewOfDatacenter {
  state: DatacenterState
  lastProbe: ProbeResult | null
}

/** One datacenter's latency as measured from the viewer's edge location (latency/estimates.ts). */
export interface MeasuredLatency {
  /** The moving average, to 0.1 ms; with no sample yet, the set-up request's time. */
  ms: number
  /** Samples counted; 0: only the set-up request so far ("no sample yet"). */
  samples: number
  /** When the last was taken (epoch ms). */
  at: number
  /** Fresh and numerous enough for the choice to trust. */
  warm: boolean
}

export interface StatusDocument {
  generatedAt: number
  viewer: ClientLocation & {
    /** Where the viewer's requests enter the edge: whose measurements and vantage serve them. */
    edgeLocation: { id: string; name?: string }
    /** The vantage that serves the viewer, whose snapshot this is (null until one has answered). */
    vantage: string | null
    steeredTo: string | null
    fallback: boolean
    /** STEERING_MODE, or the request's x-steering-mode where ALLOW_GEO_OVERRIDE is on. */
    mode: SteeringMode
    /** Why `steeredTo` is first: measured, distance, pinned or fallback (a preview never explores). */
    reason: SteeringReason
    /**
     * The datacenters the choice weighed by measured latency, in its order: the first is `steeredTo`,
     * the second the runner-up. Empty when it weighed none (pinned, fallback, distance mode, nothing
     * measured from this edge location yet); one alone when no other is near enough to compare.
     */
    compared: string[]
  }
  /** The catalogue's regions in order of first appearance, each with its datacenters in catalogue order. */
  regions: Array<{ id: string; datacenters: string[] }>
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
    /** As measured from the viewer's edge location by the isolate that answered; null: never. */
    latency: MeasuredLatency | null
    /** Great-circle distance from the viewer, in km (null when the viewer's location is unknown). */
    km: number | null
  }>
  /** One per catalogue region: where it probes from, and when its view was last refreshed (null: never). */
  vantages: Array<{ id: string; site: string; hint: LocationHint; at: number | null; fresh: boolean }>
  changes: StateChange[]
  /** Counters of the isolate that answered (each isolate counts its own requests). */
  edge: ReturnType<typeof edgeCounters>
}

/** What the status is made from: the request's view of health, steering and measurements. */
export interface StatusInput {
  datacenters: ReachableDatacenter[]
  health: RequestHealth
  viewer: ClientLocation
  edgeLocation: EdgeLocation
  /** The isolate's table (latency/estimates.ts `isolateLatency`): read, never written. */
  latency: LatencyTable
  mode: SteeringMode
  /** PROBE_INTERVAL_MS: a view older than STALE_AFTER_INTERVALS of them no longer votes. */
  probeIntervalMs: number
}

const tenths = (ms: number) => Math.round(ms * 10) / 10

export function statusDocument(input: StatusInput): StatusDocument {
  const { datacenters, health, viewer, edgeLocation, latency, mode, probeIntervalMs } = input
  const now = Date.now()
  const { snapshot } = health
  const choice = chooseDatacenters(
    datacenters,
    viewer,
    (dc) => availability(health, dc.id, now),
    latency.at(edgeLocation.id),
    now,
    mode,
    { explore: false }
  )
  const measured = new Map(latency.rows(edgeLocation.id, now).map((row) => [row.dc, row]))
  const origin = clientOrigin(viewer)
  const vantages = vantagesOf(datacenters)
  const viewOf = (vantage: string) =>
    (snapshot && Object.hasOwn(snapshot.views, vantage) ? snapshot.views[vantage] : null) ?? null
  return {
    generatedAt: now,
    viewer: {
      ...viewer,
      edgeLocation: {
        id: edgeLocation.id,
        ...(edgeLocation.name === undefined ? {} : { name: edgeLocation.name }),
      },
      vantage: snapshot?.vantage || null,
      steeredTo: choice.ranked[0]?.id ?? null,
      fallback: choice.fallback,
      mode,
      reason: choice.reason,
      compared: choice.ranked.slice(0, choice.weighed).map((dc) => dc.id),
    },
    regions: regionsOf(datacenters).map((region) => ({
      id: region.id,
      datacenters: region.datacenters.map((dc) => dc.id),
    })),
    datacenters: datacenters.map((dc) => {
      const health = snapshot?.datacenters[dc.id] ?? initialHealth(now)
      const row = measured.get(dc.id)
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
        latency: row ? { ms: tenths(row.ms), samples: row.samples, at: row.at, warm: row.warm } : null,
        km: origin ? Math.round(distanceKm(origin, dc)) : null,
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
