/**
 * A Worker that makes `n` steering decisions per request (8 datacenters, a health predicate,
 * clients spread over the globe), for bench/steering.ts. workerd's clock only moves on I/O, so
 * the cost is measured from outside: the time of a request with n decisions minus one with none.
 *
 * - `?mode=distance` (default): steer() alone, the choice before measurements.
 * - `?mode=measured`: what the request path does per request with measurements: the edge location
 *   (production's: the colo of request.cf, the hint nearest the client), then chooseDatacenters from a
 *   table warmed for 16 colos x 8 datacenters, then the choice committed (the turn, the leader). The
 *   client's location is read twice, as the request path reads it (the middleware, then failover).
 * - `?mode=measured-choice`: the same, for the clients with more than one candidate only (the others
 *   have nothing to measure between), so every decision takes the measured path.
 */
import { steer } from '../edge/steering/nearest.ts'
import { chooseDatacenters } from '../edge/latency/choose.ts'
import { LatencyTable, WARM_SAMPLES } from '../edge/latency/estimates.ts'
import { edgeLocationOf } from '../edge/placement/edge-location.ts'
import { clientLocation } from '../edge/client-location.ts'
import type { Datacenter, ReachableDatacenter } from '#shared/catalogue.ts'

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

const colos = [
  ...['FRA', 'AMS', 'LHR', 'WAW', 'MAD', 'JFK', 'ORD', 'SFO'],
  ...['GRU', 'DXB', 'JNB', 'BOM', 'SIN', 'HKG', 'NRT', 'SYD'],
]

/** The clients as requests reach the edge in production: request.cf with a colo and coordinates. */
const requests = clients.map(
  (client, i) =>
    new Request('https://edge.bench/', {
      cf: {
        colo: colos[i % colos.length]!,
        latitude: String(client.lat),
        longitude: String(client.lon),
        ...(client.country ? { country: client.country } : {}),
      },
    })
)

const endpoints = { web: 'https://dc.bench', natsWs: 'wss://dc.bench' }
const config = {
  datacenters: datacenters.map((dc): ReachableDatacenter => ({ ...dc, endpoints })),
  edgeSites: datacenters,
  legs: undefined,
  allowGeoOverride: false,
}

const down = new Set(['sfo'])
const table = new LatencyTable()

/** One decision as the request path makes it; whether it ranked by measurement. */
function decide(req: Request): { first: string; measured: boolean } {
  // The middleware derives the edge location, then failover reads the client's location again.
  const edge = edgeLocationOf(req, config).id
  const now = Date.now()
  const choice = chooseDatacenters(
    datacenters,
    clientLocation(req, false),
    (dc) => (down.has(dc.id) ? 'down' : 'available'),
    table.at(edge),
    now
  )
  table.chose(edge, choice, now)
  return {
    first: choice.ranked[0]!.id,
    measured: choice.reason === 'measured' || choice.reason === 'exploration',
  }
}

/** The requests of clients with more than one candidate: the ones measurement ranks. */
let choosing: Request[] = []
/** Every colo has warm estimates of every datacenter: the choice takes its measured path. */
function warm(now: number): void {
  if (choosing.length > 0) return
  for (const [c, colo] of colos.entries())
    for (const [d, dc] of datacenters.entries())
      // The first sample of each is a set-up, not counted: WARM_SAMPLES more make it warm.
      for (let i = 0; i <= WARM_SAMPLES; i++) table.record(colo, dc.id, 20 + ((c * 31 + d * 17) % 150), now)
  choosing = requests.filter((req) => decide(req).measured)
}

export default {
  fetch(request: Request): Response {
    const params = new URL(request.url).searchParams
    const n = Number(params.get('n') ?? 0)
    const mode = params.get('mode')
    let checksum = 0
    /** Decisions that ranked by measurement (measured or exploration), the path this bench is for. */
    let measured = 0
    if (mode === 'measured' || mode === 'measured-choice') {
      warm(Date.now())
      const reqs = mode === 'measured' ? requests : choosing
      for (let i = 0; i < n; i++) {
        const decision = decide(reqs[i % reqs.length]!)
        checksum += decision.first.charCodeAt(0)
        if (decision.measured) measured++
      }
    } else {
      for (let i = 0; i < n; i++) {
        const { ranked } = steer(datacenters, clients[i & 1023]!, (dc) =>
          down.has(dc.id) ? 'down' : 'available'
        )
        checksum += ranked[0]!.id.charCodeAt(0)
      }
    }
    return Response.json({ checksum, measured })
  },
}
