/**
 * The steering table: cities with the datacenter nearest to each among the local catalogue's three,
 * and once New York is in the catalogue. Steering (steering.test.ts) and the measured-latency choice
 * (latency.test.ts) both hold to it.
 */
import type { Datacenter } from '#shared/catalogue.ts'
import catalogue from '#shared/datacenters.json' with { type: 'json' }

export const local: Datacenter[] = catalogue
export const withNewYork: Datacenter[] = [
  ...local,
  { id: 'nyc', name: 'New York', region: 'us', lat: 40.71, lon: -74.01 },
]

export const cities = [
  // city, lat, lon, nearest of the 3 local datacenters, nearest once New York is in the catalogue
  ['Berlin', 52.52, 13.4, 'fra', 'fra'],
  ['Paris', 48.86, 2.35, 'lon', 'lon'],
  ['Madrid', 40.42, -3.7, 'lon', 'lon'],
  ['Dublin', 53.35, -6.26, 'lon', 'lon'],
  ['New York', 40.71, -74.01, 'lon', 'nyc'],
  ['Tokyo', 35.68, 139.69, 'ams', 'ams'],
  ['São Paulo', -23.55, -46.63, 'lon', 'nyc'],
  ['Cape Town', -33.92, 18.42, 'fra', 'fra'],
  ['Sydney', -33.87, 151.21, 'fra', 'nyc'],
] as const
