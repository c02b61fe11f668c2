/**
 * Steering on measured latency through the Worker (steering/failover.ts with latency/): the
 * `x-steering` header, successes recorded per edge location and failures not, STEERING_MODE, and
 * `x-steering-mode` honoured only where ALLOW_GEO_OVERRIDE is. Each case uses an edge location of its
 * own, so the estimates one case seeds do not steer another's requests.
 */
import { describe, expect, it } from 'vitest'
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import { isolateLatency, latencyRows, WARM_SAMPLES } from '../../edge/latency/estimates.ts'

interface CatalogueEntry {
  id: string
  lat: number
  lon: number
}
const catalogue = JSON.parse(env.DATACENTERS) as CatalogueEntry[]
/** The three datacenters with a web service: fra, ams and lon. */
const europe = catalogue.filter((dc) => ['fra', 'ams', 'lon'].includes(dc.id))
const berlin = '52.52,13.4'

/** The edge tests steer by distance (vitest.config.ts); these measure. */
const measuring = { STEERING_MODE: 'measured' }

/** EDGE_LOCATIONS with one site at Berlin, named `id`: Berlin's requests enter the edge there. */
const enterAt = (id: string) => ({
  ...measuring,
  EDGE_LOCATIONS: JSON.stringify([{ id, name: 'Berlin', lat: 52.52, lon: 13.4 }]),
})

async function get(
  headers: Record<string, string>,
  vars: Record<string, string>,
  datacenters: unknown[] = europe,
  cf?: Record<string, string>
): Promise<Response> {
  const ctx = createExecutionContext()
  const res = await worker.fetch(
    new Request('https://edge.test/', { headers, ...(cf ? { cf } : {}) }),
    { ...env, ...vars, DATACENTERS: JSON.stringify(datacenters) },
    ctx
  )
  await waitOnExecutionContext(ctx)
  await res.body?.cancel()
  return res
}

/** Warm estimates from `location`: ams measured fastest, although fra is nearer to Berlin. */
function seed(location: string): void {
  const now = Date.now()
  // The first sample of each is taken as a connection's set-up and not counted.
  for (let i = 0; i <= WARM_SAMPLES; i++)
    for (const [dc, ms] of [
      ['fra', 60],
      ['ams', 10],
      ['lon', 70],
    ] as const)
      isolateLatency.record(location, dc, ms, now)
}

const steering = (res: Response) => [res.headers.get('x-steering'), res.headers.get('x-datacenter')]

describe('steering on measured latency, through the Worker', () => {
  it('steers by distance while cold, explores every other request, and records each success', async () => {
    // Near Lisbon: the edge location is lon (the nearest site), nothing measured from it yet.
    const lisbon = { 'x-client-geo': '38.72,-9.14' }
    const samples = () => Object.fromEntries(latencyRows('lon').map((row) => [row.dc, row.samples]))
    expect(steering(await get(lisbon, measuring))).toEqual(['distance', 'lon'])
    // The first success from a location to a datacenter is its set-up: kept, not counted.
    expect(samples()).toEqual({ lon: 0 })
    expect(steering(await get(lisbon, measuring))).toEqual(['exploration', 'ams'])
    expect(steering(await get(lisbon, measuring))).toEqual(['distance', 'lon'])
    expect(samples()).toEqual({ lon: 1, ams: 0 })
  })

  it('sends a request to the datacenter measured fastest, and says so', async () => {
    seed('ber-measured')
    const res = await get({ 'x-client-geo': berlin }, enterAt('ber-measured'))
    expect(steering(res)).toEqual(['measured', 'ams'])
    expect(latencyRows('ber-measured').find((row) => row.dc === 'ams')?.samples).toBe(WARM_SAMPLES + 1)
  })

  it('steers by distance when STEERING_MODE says so, however warm the estimates', async () => {
    seed('ber-switch')
    const res = await get({ 'x-client-geo': berlin }, { ...enterAt('ber-switch'), STEERING_MODE: 'distance' })
    expect(steering(res)).toEqual(['distance', 'fra'])
  })

  it('honours x-steering-mode where ALLOW_GEO_OVERRIDE is on', async () => {
    seed('ber-header')
    const vars = enterAt('ber-header')
    const distance = { 'x-client-geo': berlin, 'x-steering-mode': 'distance' }
    expect(steering(await get(distance, vars))).toEqual(['distance', 'fra'])
    const measured = { 'x-client-geo': berlin, 'x-steering-mode': 'measured' }
    expect(steering(await get(measured, { ...vars, STEERING_MODE: 'distance' }))).toEqual(['measured', 'ams'])
  })

  it('ignores x-steering-mode where ALLOW_GEO_OVERRIDE is off', async () => {
    // In production the edge location is the colo that received the request.
    const cf = { colo: 'TXL', latitude: '52.52', longitude: '13.4' }
    seed('TXL')
    const off = { ...measuring, ALLOW_GEO_OVERRIDE: 'false' }
    expect(steering(await get({ 'x-steering-mode': 'distance' }, off, europe, cf))).toEqual([
      'measured',
      'ams',
    ])
    expect(steering(await get({}, { ...off, STEERING_MODE: 'distance' }, europe, cf))).toEqual([
      'distance',
      'fra',
    ])
  })

  it('records nothing for a datacenter that failed', async () => {
    // "bos" near Boston on a closed port: the request fails over to lon, the next nearest.
    const bos = { id: 'bos', name: 'Boston', region: 'us', lat: 42.36, lon: -71.06 }
    const withBoston = [
      ...europe,
      { ...bos, endpoints: { web: 'http://127.0.0.1:9', natsWs: 'ws://127.0.0.1:9' } },
    ]
    const res = await get({ 'x-client-geo': '42.36,-71.06' }, measuring, withBoston)
    expect(res.headers.get('x-failover-from')).toBe('bos')
    expect(res.headers.get('x-datacenter')).toBe('lon')
    expect(latencyRows('bos').map((row) => row.dc)).toEqual(['lon'])
  })
})

describe('the steering headers on every kind of answer', () => {
  it('reach an image miss, which the route answers from its own cache entry', async () => {
    const ctx = createExecutionContext()
    const source = `${env.IMAGE_ORIGIN}/files/icon.png?steering-header`
    const res = await worker.fetch(
      new Request(`https://edge.test/img/width=16,format=png/${source}`, {
        headers: { 'x-client-geo': '-33.87,151.21' },
      }),
      { ...env, ...measuring },
      ctx
    )
    await waitOnExecutionContext(ctx)
    await res.body?.cancel()
    expect(res.status).toBe(200)
    expect(res.headers.get('x-cache')).toBe('MISS')
    expect(res.headers.get('x-steering')).toBe('distance')
  })
})
