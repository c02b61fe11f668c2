/** `/status.json`: datacenters with their state and last probe, recent changes, the viewer's steering, edge counters. */
import type { ReachableDatacenter } from '#shared/catalogue.ts'
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

export interface StatusDocument {
  generatedAt: number
  viewer: ClientLocation & { steeredTo: string | null; fallback: boolean }
  datacenters: Array<{
    id: string
    name: string
    lat: number
    lon: number
    weight: number
    state: DatacenterState
    since: number
    lastProbe: ProbeResult | null
  }>
  changes: StateChange[]
  /** Counters of the isolate that answered (each isolate counts its own requests). */
  edge: ReturnType<typeof edgeCounters>
}

export function statusDocument(
  datacenters: ReachableDatacenter[],
  health: RequestHealth,
  viewer: ClientLocation
): StatusDocument {
  const now = Date.now()
  const { snapshot } = health
  const steering = steer(datacenters, viewer, (dc) => availability(health, dc.id, now))
  return {
    generatedAt: now,
    viewer: { ...viewer, steeredTo: steering.ranked[0]?.id ?? null, fallback: steering.fallback },
    datacenters: datacenters.map((dc) => {
      const health = snapshot?.datacenters[dc.id] ?? initialHealth(now)
      return {
        id: dc.id,
        name: dc.name,
        lat: dc.lat,
        lon: dc.lon,
        weight: dc.weight ?? 1,
        state: stateOf(health),
        since: health.since,
        lastProbe: health.lastProbe ?? null,
      }
    }),
    changes: snapshot?.changes ?? [],
    edge: edgeCounters(),
  }
}
