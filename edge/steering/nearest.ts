/**
 * The pure steering choice: datacenters ranked nearest first by great-circle distance from the
 * client. Without coordinates: datacenters pinning the client's country first, then catalogue order.
 */
import type { Datacenter } from '../../shared/catalogue.ts'
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

export function rankDatacenters<D extends Datacenter>(catalogue: readonly D[], client: ClientLocation): D[] {
  const { lat, lon, country } = client
  if (lat !== undefined && lon !== undefined) {
    return catalogue
      .map((dc) => ({ dc, km: distanceKm({ lat, lon }, dc) }))
      .sort((a, b) => a.km - b.km)
      .map((entry) => entry.dc)
  }
  if (country) {
    const pinned = catalogue.filter((dc) => dc.countries?.includes(country))
    return [...pinned, ...catalogue.filter((dc) => !pinned.includes(dc))]
  }
  return [...catalogue]
}
