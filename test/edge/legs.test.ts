/**
 * The edge's legs through the emulated WAN (edge/steering/legs.ts): with DATACENTER_LEGS, a request
 * from a client whose nearest datacenter is h reaches the datacenter t it is steered to (or fails over
 * to) at leg (h, t), over HTTP and over NATS; without it, at t's own endpoints, as before; a bad
 * DATACENTER_LEGS answers 500 config_invalid naming the field.
 *
 * Each leg of a test points at a different real web service (global-setup.ts: fra, ams, lon, syd),
 * so the `x-datacenter` it answers with says which leg a request took; the datacenters' own endpoints
 * refuse every connection, so only a leg can answer. Each case has datacenter ids of its own: no health
 * state of another case changes its steering.
 */
import { describe, expect, it } from 'vitest'
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import { replaceSnapshot } from '../../edge/steering/health-view.ts'
import { vantagesOf, vantageStub } from '../../edge/vantages/vantage-set.ts'
import { errorOf } from './responses.ts'

const catalogue = JSON.parse(env.DATACENTERS) as Array<{
  id: string
  endpoints: { web: string; natsWs: string }
}>
const real = (id: string) => {
  const dc = catalogue.find((d) => d.id === id)
  if (!dc) throw new Error(`no ${id} in the test catalogue`)
  return dc.endpoints
}
const refused = { web: 'http://127.0.0.1:9', natsWs: 'ws://127.0.0.1:9' }
const natsWs = real('fra').natsWs

const boston = '42.36,-71.06'
const sanFrancisco = '37.77,-122.42'

/** Two datacenters, `<p>-e` in Boston and `<p>-w` in San Francisco, reachable through legs only. */
function world(p: string, e = `${p}-e`, w = `${p}-w`) {
  const datacenters = [
    { id: e, name: e, region: 'us', lat: 42.36, lon: -71.06, endpoints: refused },
    { id: w, name: w, region: 'us', lat: 37.77, lon: -122.42, endpoints: refused },
  ]
  /** Each leg answers as a different real web service: (e,e) fra, (e,w) ams, (w,e) syd, (w,w) lon. */
  const legs: Record<string, Record<string, { web: string; natsWs: string }>> = {
    [e]: { [e]: real('fra'), [w]: real('ams') },
    [w]: { [e]: real('syd'), [w]: real('lon') },
  }
  return { e, w, datacenters, legs }
}

/** `GET <path>` from `geo` against these datacenters and vars (DATACENTER_LEGS among them, or not). */
async function get(
  path: string,
  geo: string,
  datacenters: unknown[],
  vars: Record<string, string> = {},
  origin = 'https://edge.test'
) {
  const ctx = createExecutionContext()
  const res = await worker.fetch(
    new Request(`${origin}${path}`, { headers: { 'x-client-geo': geo } }),
    { ...env, ...vars, DATACENTERS: JSON.stringify(datacenters) },
    ctx
  )
  await waitOnExecutionContext(ctx)
  return res
}

const withLegs = (legs: unknown) => ({ DATACENTER_LEGS: JSON.stringify(legs) })

describe('the web service, through the leg from the client home datacenter', () => {
  it('takes the leg from the datacenter nearest the client to the one steered to', async () => {
    const { datacenters, legs } = world('near')
    const fromBoston = await get('/', boston, datacenters, withLegs(legs))
    expect(fromBoston.status).toBe(200)
    expect(fromBoston.headers.get('x-datacenter')).toBe('fra')
    const fromSanFrancisco = await get('/', sanFrancisco, datacenters, withLegs(legs))
    expect(fromSanFrancisco.headers.get('x-datacenter')).toBe('lon')
  })

  it('takes the leg from the client home to the next datacenter when its own is drained', async () => {
    // The health vantages drain only what their own catalogue has: nyc, which no other case here uses.
    const { e, datacenters, legs } = world('drained', 'nyc')
    // As the operator API does: every vantage, and this isolate's memo of each.
    const drain = async (drained: boolean) => {
      for (const vantage of vantagesOf(JSON.parse(env.DATACENTERS) as ReachableDatacenter[]))
        replaceSnapshot(env, await vantageStub(env, vantage).setDrained(e, drained))
    }
    await drain(true)
    try {
      const res = await get('/', boston, datacenters, withLegs(legs))
      expect(res.status).toBe(200)
      // (e, w): the client is still in Boston, served from San Francisco.
      expect(res.headers.get('x-datacenter')).toBe('ams')
      expect(res.headers.get('x-failover-from')).toBeNull()
    } finally {
      await drain(false)
    }
  })

  it('fails over from the client home over the leg to the next datacenter when its own is down', async () => {
    const { e, w, datacenters, legs } = world('down')
    legs[e]![e] = refused
    const res = await get('/', boston, datacenters, withLegs(legs))
    expect(res.status).toBe(200)
    expect(res.headers.get('x-failover-from')).toBe(e)
    expect(res.headers.get('x-datacenter')).toBe('ams')
    // Not (w, w): that leg stands in San Francisco.
    legs[w]![w] = refused
    expect((await get('/', boston, datacenters, withLegs(legs))).headers.get('x-datacenter')).toBe('ams')
  })

  it('asks for the dashboard figures over the leg too', async () => {
    const { datacenters, legs } = world('dash')
    // The test web services have no Prometheus: reached, each answers metrics_unavailable.
    const throughLegs = await get(
      '/status/dashboard.json',
      boston,
      datacenters,
      withLegs(legs),
      'https://a.test'
    )
    expect(throughLegs.status).toBe(503)
    expect((await errorOf(throughLegs)).code).toBe('metrics_unavailable')
    const direct = await get('/status/dashboard.json', boston, datacenters, {}, 'https://b.test')
    expect(direct.status).toBe(502)
    expect((await errorOf(direct)).code).toBe('datacenter_unreachable')
  })

  it('without legs, reaches each datacenter at its own endpoints, as before', async () => {
    const { datacenters } = world('none')
    const own = [
      { ...datacenters[0]!, endpoints: real('syd') },
      { ...datacenters[1]!, endpoints: real('lon') },
    ]
    expect((await get('/', boston, own)).headers.get('x-datacenter')).toBe('syd')
    expect((await get('/', sanFrancisco, own)).headers.get('x-datacenter')).toBe('lon')
    const unreachable = await get('/', boston, datacenters)
    expect(unreachable.status).toBe(502)
  })
})

describe('NATS, through a bridge per leg', () => {
  // The NATS subjects are the real datacenters' (ping.fra is answered by fra's web service), so these
  // two keep real ids, moved to Boston (fra) and San Francisco (ams).
  const datacenters = [
    { id: 'fra', name: 'fra', region: 'us', lat: 42.36, lon: -71.06, endpoints: refused },
    { id: 'ams', name: 'ams', region: 'us', lat: 37.77, lon: -122.42, endpoints: refused },
  ]
  const legs = {
    fra: { fra: { web: refused.web, natsWs }, ams: refused },
    ams: { fra: refused, ams: refused },
  }

  it('connects the bridge of (home, datacenter) over that leg', async () => {
    const fromBoston = await get('/health/fra', boston, datacenters, withLegs(legs))
    expect(fromBoston.status).toBe(200)
    expect(fromBoston.headers.get('x-datacenter')).toBe('fra')
    expect(await env.NATS_BRIDGE.getByName('fra>fra/0').connects()).toBe(1)
    // From San Francisco the leg to fra is another, and it is cut.
    const fromSanFrancisco = await get('/health/fra', sanFrancisco, datacenters, withLegs(legs))
    expect(fromSanFrancisco.status).toBe(502)
    expect((await errorOf(fromSanFrancisco)).message).toMatch(/^NATS of fra: /)
    expect(await env.NATS_BRIDGE.getByName('ams>fra/0').connects()).toBe(1)
  })

  it("without legs, uses the datacenter's bridge for the client's edge region", async () => {
    // Boston enters the edge at the test catalogue's nyc: region enam (edge/nats/bridge-stub.ts).
    const before = await env.NATS_BRIDGE.getByName('lon/enam/0').connects()
    const res = await get('/health/lon', boston, catalogue)
    expect(res.status).toBe(200)
    expect(before).toBe(0)
    expect(await env.NATS_BRIDGE.getByName('lon/enam/0').connects()).toBe(1)
  })
})

describe('a bad DATACENTER_LEGS answers 500 config_invalid naming the field', () => {
  const { e, w, datacenters, legs } = world('bad')
  const leg = real('fra')

  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"bad-e":', /^DATACENTER_LEGS: not valid JSON$/],
    ['empty', '', /^DATACENTER_LEGS: not valid JSON$/],
    ['an array', '[]', /^DATACENTER_LEGS: Invalid input: expected record, received array$/],
    [
      'an unknown home',
      JSON.stringify({ ...legs, nyc: { [e]: leg, [w]: leg } }),
      /^DATACENTER_LEGS\.nyc: unknown edge location "nyc" \(not in DATACENTERS or EDGE_LOCATIONS\)$/,
    ],
    [
      'an unknown target',
      JSON.stringify({ ...legs, [e]: { ...legs[e], sgp: leg } }),
      /^DATACENTER_LEGS\.bad-e\.sgp: unknown datacenter "sgp"/,
    ],
    [
      'a key that is an Object.prototype member',
      JSON.stringify({ ...legs, [e]: { ...legs[e], constructor: leg } }),
      /^DATACENTER_LEGS\.bad-e\.constructor: unknown datacenter "constructor"/,
    ],
    [
      'a __proto__ key',
      `{"__proto__":{"x":1},${JSON.stringify(legs).slice(1)}`,
      /^DATACENTER_LEGS: "__proto__" is not an id$/,
    ],
    [
      'a missing leg',
      JSON.stringify({ ...legs, [w]: { [w]: leg } }),
      /^DATACENTER_LEGS\.bad-w\.bad-e: missing: every datacenter and edge location needs a leg to each/,
    ],
    ['a missing home', JSON.stringify({ [e]: legs[e] }), /^DATACENTER_LEGS\.bad-w: missing: /],
    [
      'a URL of another scheme',
      JSON.stringify({ ...legs, [e]: { ...legs[e], [e]: { web: 'javascript:alert(1)', natsWs } } }),
      /^DATACENTER_LEGS\.bad-e\.bad-e\.web: /,
    ],
    [
      'a field endpoints do not have',
      JSON.stringify({ ...legs, [e]: { ...legs[e], [e]: { ...leg, nats: natsWs } } }),
      /^DATACENTER_LEGS\.bad-e\.bad-e: Unrecognized key: "nats"$/,
    ],
    [
      'nesting 30,000 deep',
      `${'['.repeat(30_000)}${']'.repeat(30_000)}`,
      /^DATACENTER_LEGS: cannot be read \(RangeError: Maximum call stack size exceeded\)$/,
    ],
    [
      'more than 64 KiB',
      JSON.stringify({ ...legs, pad: 'x'.repeat(64 * 1024) }),
      /^DATACENTER_LEGS: must be at most 65536 characters/,
    ],
  ]

  it.each(cases)('%s', async (_what, value, expected) => {
    const res = await get('/', boston, datacenters, { DATACENTER_LEGS: value })
    expect(res.status).toBe(500)
    const error = await errorOf(res)
    expect(error.code).toBe('config_invalid')
    expect(error.message).toMatch(expected)
  })

  it('lists five problems at most, and how many more there are', async () => {
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`nope-${i}`, {}]))
    const res = await get('/', boston, datacenters, withLegs({ ...legs, ...many }))
    const { message } = await errorOf(res)
    expect(message.split('; DATACENTER_LEGS.')).toHaveLength(5)
    expect(message).toMatch(/; and 35 more$/)
  })

  it('takes the same table whole (the control for the cases above)', async () => {
    expect((await get('/', boston, datacenters, withLegs(legs))).status).toBe(200)
  })
})

describe('EDGE_LOCATIONS: where clients enter the edge without a datacenter', () => {
  // Kansas City: nearer to neither coast's datacenter than to itself.
  const kansasCity = '39.1,-94.58'
  const site = (id: string) => ({ id, name: 'Kansas City', lat: 39.1, lon: -94.58 })

  it('gives a client nearest to one its own legs', async () => {
    const { e, w, datacenters, legs } = world('site')
    const kc = 'site-kc'
    // From Kansas City, e answers as syd, w as lon: a request that took the site's legs says so.
    const vars = {
      EDGE_LOCATIONS: JSON.stringify([site(kc)]),
      ...withLegs({ ...legs, [kc]: { [e]: real('syd'), [w]: real('lon') } }),
    }
    const res = await get('/', kansasCity, datacenters, vars)
    expect(res.status).toBe(200)
    // Kansas City is nearer Boston (e) than San Francisco: the e datacenter, through the site's leg.
    expect(res.headers.get('x-datacenter')).toBe('syd')
    // A client in Boston still enters at e's own site.
    expect((await get('/', boston, datacenters, vars)).headers.get('x-datacenter')).toBe('fra')
  })

  const { e, w, datacenters, legs } = world('badsite')
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['not JSON', { EDGE_LOCATIONS: '[' }, /^EDGE_LOCATIONS: not valid JSON$/],
    ['not a list', { EDGE_LOCATIONS: '{}' }, /^EDGE_LOCATIONS: Invalid input: expected array/],
    [
      'a site off the globe',
      { EDGE_LOCATIONS: JSON.stringify([{ ...site('kc'), lat: 91 }]) },
      /^EDGE_LOCATIONS\[0\]\.lat: /,
    ],
    [
      'a datacenter id',
      { EDGE_LOCATIONS: JSON.stringify([{ ...site(e) }]) },
      /^EDGE_LOCATIONS: "badsite-e" is taken/,
    ],
    [
      'a site without legs when there are legs',
      { EDGE_LOCATIONS: JSON.stringify([site('kc')]), ...withLegs(legs) },
      /^DATACENTER_LEGS\.kc: missing: /,
    ],
    [
      'a site with a leg to one datacenter only',
      { EDGE_LOCATIONS: JSON.stringify([site('kc')]), ...withLegs({ ...legs, kc: { [w]: real('lon') } }) },
      /^DATACENTER_LEGS\.kc\.badsite-e: missing: /,
    ],
  ]
  it.each(cases)('refuses %s: config_invalid naming it', async (_what, vars, expected) => {
    const res = await get('/', boston, datacenters, vars)
    expect(res.status).toBe(500)
    const error = await errorOf(res)
    expect(error.code).toBe('config_invalid')
    expect(error.message).toMatch(expected)
  })
})
