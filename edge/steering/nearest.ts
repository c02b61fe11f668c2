/**
 * The pure steering choice: datacenters ranked for one client, best first.
 *
 * - A datacenter pinned to the client's country (`countries` in the catalogue) comes first.
 * - Then by great-circle distance from the client's coordinates, divided by the datacenter's
 *   `weight` (default 1: weight 2 makes a datacenter count as half as far). Without coordinates,
 *   from the centre of the client's continent; without a continent, in catalogue order.
 * - Only available datacenters (healthy, not drained, weight above 0) are chosen. When none is,
 *   the ranking falls back to every datacenter by the same order (never answer from nowhere),
 *   drained ones last (an operator took them out on purpose), and says so with `fallback: true`.
 */
import type { Datacenter } from '#shared/catalogue.ts'
import type { ClientLocation } from '../client-location.ts'

const EARTH_RADIUS_KM = 6371
const toRadians = (degrees: number) => (degrees * Math.PI) / 180

/** Haversine distance in kilometres. */
export function distanceKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const dLat = toRadians(b.lat - a.lat)
  const dLon = toRadians(b.lon - a.lon)
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(toRadians(a.lat)) * Math.cos(toRadians(b.lat)) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)))
}

/**
 * The item of `items` whose place (`at`) is nearest to `point`; the first of equals. Throws on an
 * empty list, naming what was empty (`what`).
 */
export function nearestTo<T extends object | string>(
  items: readonly T[],
  point: { lat: number; lon: number },
  at: (item: T) => { lat: number; lon: number },
  what = 'item'
): T {
  if (items.length === 0) throw new RangeError(`no ${what} to choose from`)
  const first = items[0] as T
  let best: T = first
  let bestKm = distanceKm(point, at(first))
  for (const item of items) {
    const km = distanceKm(point, at(item))
    if (km < bestKm) [best, bestKm] = [item, km]
  }
  return best
}

/** Rough population centres of request.cf's continent codes, for clients without coordinates. */
export const continentCentres: Record<string, { lat: number; lon: number }> = {
  AF: { lat: 6, lon: 17 },
  AN: { lat: -80, lon: 0 },
  AS: { lat: 30, lon: 100 },
  EU: { lat: 50, lon: 10 },
  NA: { lat: 40, lon: -95 },
  OC: { lat: -27, lon: 140 },
  SA: { lat: -15, lon: -60 },
}

export interface Steering<D extends Datacenter> {
  /** Datacenters to try, in order. */
  ranked: D[]
  /** True when no datacenter was available and the ranking is a last resort. */
  fallback: boolean
}

/** What the health state says of a datacenter, for steering. */
export type Availability = 'available' | 'down' | 'drained'

/** Where distances are measured from: the client's coordinates, else its continent's centre. */
export function clientOrigin(client: ClientLocation): { lat: number; lon: number } | undefined {
  if (client.lat !== undefined && client.lon !== undefined) return { lat: client.lat, lon: client.lon }
  return client.continent ? continentCentres[client.continent] : undefined
}

export function steer<D extends Datacenter>(
  catalogue: readonly D[],
  client: ClientLocation,
  availability: (dc: D) => Availability = () => 'available'
): Steering<D> {
  const origin = clientOrigin(client)
  const scored = catalogue.map((dc, index) => ({
    dc,
    pinned: client.country !== undefined && dc.countries?.includes(client.country) === true,
    // Catalogue order breaks ties and ranks when the client's location is unknown.
    score: origin ? distanceKm(origin, dc) / (dc.weight || 1) : index,
  }))
  scored.sort((a, b) => Number(b.pinned) - Number(a.pinned) || a.score - b.score)
  const all = scored.map((s) => s.dc)
  const available = all.filter((dc) => dc.weight !== 0 && availability(dc) === 'available')
  if (available.length > 0) return { ranked: available, fallback: false }
  const [rest, drained]: [D[], D[]] = [[], []]
  for (const dc of all) (availability(dc) === 'drained' ? drained : rest).push(dc)
  return { ranked: [...rest, ...drained], fallback: true }
}
