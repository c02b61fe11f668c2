/**
 * A Worker that makes `n` steering decisions per request (8 datacenters, a health predicate,
 * clients spread over the globe), for bench/steering.ts. workerd's clock only moves on I/O, so
 * the cost is measured from outside: the time of a request with n decisions minus one with none.
 */
import { steer } from '../edge/steering/nearest.ts'
import type { Datacenter } from '#shared/catalogue.ts'

export const datacenters: Datacenter[] = [
  { id: 'fra', region: 'eu', name: 'Frankfurt', lat: 50.11, lon: 8.68 },
  { id: 'ams', region: 'eu', name: 'Amsterdam', lat: 52.37, lon: 4.9 },
  { id: 'lon', region: 'eu', name: 'London', lat: 51.51, lon: -0.13 },
  { id: 'nyc', region: 'us', name: 'New York', lat: 40.71, lon: -74.01 },
  { id: 'sfo', region: 'us', name: 'San Francisco', lat: 37.77, lon: -122.42 },
  { id: 'sgp', region: 'ap', name: 'Singapore', lat: 1.35, lon: 103.82 },
  { id: 'blr', region: 'ap', name: 'Bangalore', lat: 12.97, lon: 77.59 },
  { id: 'syd', region: 'ap', name: 'Sydney', lat: -33.87, lon: 151.21, weight: 2 },
]

const clients = Array.from({ length: 1024 }, (_, i) => ({
  lat: ((i * 37) % 180) - 90,
  lon: ((i * 73) % 360) - 180,
  country: i % 3 === 0 ? 'DE' : undefined,
}))

export default {
  fetch(request: Request): Response {
    const n = Number(new URL(request.url).searchParams.get('n') ?? 0)
    const down = new Set(['sfo'])
    let checksum = 0
    for (let i = 0; i < n; i++) {
      const { ranked } = steer(datacenters, clients[i & 1023]!, (dc) =>
        down.has(dc.id) ? 'down' : 'available'
      )
      checksum += ranked[0]!.id.charCodeAt(0)
    }
    return new Response(String(checksum))
  },
}
