/**
 * The status page: rendered complete on the server (read here with workerd's HTMLRewriter, no script
 * runs), escaped, and with a map of real land fitted to the catalogue, whether three datacenters in
 * Europe or six on three continents. The page in a real browser, and its screenshots:
 * test/e2e/status-page-catalogues.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { env, exports } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import europe from '#shared/datacenters.json' with { type: 'json' }
import production from '../../deploy/datacenters.production.json' with { type: 'json' }
import sixContinents from '../fixtures/datacenters/six-continents.json' with { type: 'json' }
import { statusDocument, type StatusDocument } from '../../edge/status/document.ts'
import { isolateLatency, LatencyTable, latencyRows, WARM_SAMPLES } from '../../edge/latency/estimates.ts'
import { distanceKm } from '../../edge/steering/nearest.ts'
import worker from '../../edge/index.ts'
import { vantageScope, type VantageScope } from './vantage-scope.ts'
import type { ClientLocation } from '../../edge/client-location.ts'
import { liveParts, stateColours, statusPage } from '../../edge/status/page.tsx'
import {
  centralMeridian,
  HEIGHT,
  LABEL_SIZE,
  MARKER_RADIUS,
  VANTAGE_LABEL_SIZE,
  VANTAGE_SIZE,
  WIDTH,
  worldMap,
  type MapLabel,
} from '../../edge/status/world-map.ts'
import { vantagesOf } from '../../edge/vantages/vantage-set.ts'

type Attributes = Record<string, string | null>

/** Every element matching `selector`: the attributes asked for, and its text. */
async function select(html: string, selector: string, names: string[] = []) {
  const found: Array<{ attrs: Attributes; text: string }> = []
  await new HTMLRewriter()
    .on(selector, {
      element(el) {
        found.push({ attrs: Object.fromEntries(names.map((n) => [n, el.getAttribute(n)])), text: '' })
      },
      text(chunk) {
        found[found.length - 1]!.text += chunk.text
      },
    })
    .transform(new Response(html))
    .text()
  return found
}

const get = (path: string, headers: Record<string, string> = {}) =>
  exports.default.fetch(new Request(`https://edge.test${path}`, { headers }))

const reachable = (
  catalogue: Array<{ id: string; name: string; region: string; lat: number; lon: number }>
) =>
  catalogue.map((dc): ReachableDatacenter => ({
    ...dc,
    endpoints: { web: `https://${dc.id}.test`, natsWs: `wss://${dc.id}.test` },
  }))

/** Health before the registry has answered, and no hold: every datacenter counts as up. */
const noProbeYet = { snapshot: undefined, edgeLocation: 'lon' }

/** The status document for a catalogue of one's choosing, no probe yet, entering the edge at London. */
const documentFor = (
  catalogue: ReachableDatacenter[],
  viewer: ClientLocation = { lat: 51.51, lon: -0.13 },
  latency = new LatencyTable()
) =>
  statusDocument({
    datacenters: catalogue,
    health: noProbeYet,
    viewer,
    edgeLocation: { id: 'lon', hint: 'weur', name: 'London' },
    latency,
    mode: 'measured',
    probeIntervalMs: 5_000,
  })

/** The page as the route renders it, for a catalogue of one's choosing and no probe yet. */
async function pageFor(catalogue: ReachableDatacenter[], viewer = { lat: 51.51, lon: -0.13 }) {
  return statusPage(documentFor(catalogue, viewer), worldMap(catalogue), 5_000)
}

describe('GET /status without JavaScript', () => {
  it('is one HTML page with no external asset and one inline script', async () => {
    const res = await get('/status')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const html = await res.text()
    expect(html).toMatch(/^<!doctype html><html lang="en">/)
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)="https?:/)
    const scripts = await select(html, 'script', ['src'])
    expect(scripts.map((script) => script.attrs)).toEqual([{ src: null }])
    expect(scripts[0]!.text).toContain('/status/live') // the bundled refresh module, inline
  })

  it('has a row and a marker per datacenter of the catalogue, each with its state', async () => {
    const html = await (await get('/status', { 'x-client-geo': '52.37,4.90' })).text()
    const rows = await select(html, 'tbody#datacenters > tr[data-dc]', ['data-dc', 'data-state'])
    // Grouped by region: eu (cut is in eu, listed after nyc in the catalogue), us, ap.
    expect(rows.map((row) => row.attrs['data-dc'])).toEqual(['fra', 'ams', 'lon', 'cut', 'nyc', 'syd'])
    const badges = await select(html, 'tbody#datacenters .badge')
    const markers = await select(html, '#markers g.dc', ['data-dc', 'data-state'])
    const fills = await select(html, '#markers g.dc circle.state', ['fill'])
    expect(markers.map((m) => m.attrs['data-dc'])).toEqual(['fra', 'ams', 'lon', 'nyc', 'cut', 'syd'])
    rows.forEach((row, i) => {
      const state = row.attrs['data-state'] as keyof typeof stateColours
      expect(Object.keys(stateColours)).toContain(state)
      expect(badges[i]!.text).toBe(state)
      const m = markers.findIndex((marker) => marker.attrs['data-dc'] === row.attrs['data-dc'])
      expect(markers[m]!.attrs).toEqual(row.attrs)
      expect(fills[m]!.attrs.fill).toBe(stateColours[state])
    })
    // The table's cells are the server's, not a script's: names, probe times, latencies.
    expect(rows.map((row) => row.text)).toEqual(
      expect.arrayContaining([expect.stringContaining('Amsterdam'), expect.stringContaining('Sydney')])
    )
    expect((await select(html, '#viewer'))[0]!.text).toContain('are served by Amsterdam (ams):')
    expect(await select(html, '#you', ['cx'])).toHaveLength(1)
  })

  it("shows this edge's counters, the ones /status.json carries", async () => {
    const html = await (await get('/status')).text()
    const [row] = await select(html, 'tbody#edge > tr')
    const counts = (await select(html, 'tbody#edge td')).map((cell) => cell.text)
    expect(row).toBeDefined()
    // requests, cache hits, failovers, fallbacks, failures, counting since
    expect(counts).toHaveLength(6)
    expect(Number(counts[0])).toBeGreaterThan(0) // this request, at least
    for (const n of counts.slice(1, 5)) expect(n).toMatch(/^\d+$/)
    // A time, or 'isolate start' when the counters were made where workerd's clock reads 0.
    expect(counts[5]).toMatch(/\d\d:\d\d:\d\d UTC$|^isolate start$/)
    const headings = (await select(html, 'table th')).map((th) => th.text)
    expect(headings).toEqual(
      expect.arrayContaining(['Requests', 'Cache hits', 'Failovers', 'Fallbacks', 'Failures', 'Served here'])
    )
  })

  it('GET /status/live has exactly the parts of the page marked live, by id', async () => {
    const page = await (await get('/status')).text()
    const res = await get('/status/live')
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const live = await res.text()
    const ids = async (html: string) => (await select(html, '[data-live]', ['id'])).map((p) => p.attrs.id)
    expect(await ids(live)).toEqual(await ids(page))
    expect(await ids(live)).toEqual([
      'summary',
      'viewer',
      'routes',
      'markers',
      'vantages',
      'datacenters',
      'changes',
      'edge',
      'updated',
    ])
    expect(await select(live, '#markers g.dc')).toHaveLength(6)
    expect(live).not.toContain('class="land"') // the map's land stays put
  })
})

const berlin = { lat: 52.52, lon: 13.4 }
/** The test catalogue (test/edge/global-setup.ts). */
const catalogue = JSON.parse(env.DATACENTERS) as ReachableDatacenter[]

/**
 * `path` from a client in Berlin through the Worker, steering on measurements (the edge tests steer by
 * distance otherwise), with an edge location at Berlin named `location`: each case measures apart.
 */
async function fromBerlin(location: string, path: string, headers: Record<string, string> = {}) {
  const ctx = createExecutionContext()
  const vars = {
    STEERING_MODE: 'measured',
    EDGE_LOCATIONS: JSON.stringify([{ id: location, name: 'Berlin', ...berlin }]),
  }
  const res = await worker.fetch(
    new Request(`https://edge.test${path}`, {
      headers: { 'x-client-geo': `${berlin.lat},${berlin.lon}`, ...headers },
    }),
    { ...env, ...vars },
    ctx
  )
  await waitOnExecutionContext(ctx)
  return res
}

const statusFrom = async (location: string, headers: Record<string, string> = {}) =>
  (await fromBerlin(location, '/status.json', headers)).json<StatusDocument>()

/** Warm estimates from `location`: ams measured fastest, although fra is nearer to Berlin. */
function seed(location: string, ms: Record<string, number> = { fra: 60, ams: 10, lon: 70 }): void {
  const now = Date.now()
  // The first sample of each is a connection's set-up and not counted.
  for (let i = 0; i <= WARM_SAMPLES; i++)
    for (const [dc, value] of Object.entries(ms)) isolateLatency.record(location, dc, value, now)
}

describe('GET /status.json: where the viewer is served, and why', () => {
  it("lists the catalogue's regions, each with its datacenters in catalogue order", async () => {
    const doc = await statusFrom('ber-regions')
    expect(doc.regions).toEqual([
      { id: 'eu', datacenters: ['fra', 'ams', 'lon', 'cut'] },
      { id: 'us', datacenters: ['nyc'] },
      { id: 'ap', datacenters: ['syd'] },
    ])
    const listed = doc.regions.flatMap((region) => region.datacenters)
    expect(listed.sort()).toEqual(doc.datacenters.map((dc) => dc.id).sort())
  })

  it('says where the viewer enters the edge, and that it is served by distance before any measurement', async () => {
    const doc = await statusFrom('ber-cold')
    expect(doc.viewer).toMatchObject({
      edgeLocation: { id: 'ber-cold', name: 'Berlin' },
      steeredTo: 'fra',
      mode: 'measured',
      reason: 'distance',
      compared: [],
    })
    for (const dc of doc.datacenters) {
      expect(dc.latency).toBeNull()
      expect(dc.km).toBe(Math.round(distanceKm(berlin, dc)))
    }
  })

  it("shows what the viewer's requests measured; reading it records nothing and takes no turn", async () => {
    const location = 'ber-requests'
    // Cold: fra (the nearest) on even turns, the coldest other candidate explored on odd ones.
    const served: Array<string | null> = []
    for (let i = 0; i < 3; i++) {
      const res = await fromBerlin(location, '/')
      await res.body?.cancel()
      served.push(`${res.headers.get('x-steering')} ${res.headers.get('x-datacenter')}`)
    }
    expect(served).toEqual(['distance fra', 'exploration ams', 'distance fra'])
    const state = { ...isolateLatency.at(location)! }
    const rows = latencyRows(location)
    expect(state.turn).toBe(3) // the next request's turn explores

    const doc = await statusFrom(location)
    for (const path of ['/status', '/status/live']) await (await fromBerlin(location, path)).text()
    expect({ ...isolateLatency.at(location)! }).toEqual(state)
    expect(latencyRows(location)).toEqual(rows)

    // What a request gets on a turn that does not explore, said so: fra, by distance, 3 weighed.
    expect(doc.viewer).toMatchObject({
      steeredTo: 'fra',
      reason: 'distance',
      compared: ['fra', 'ams', 'lon'],
    })
    const latency = Object.fromEntries(doc.datacenters.map((dc) => [dc.id, dc.latency]))
    const fra = rows.find((row) => row.dc === 'fra')!
    const ams = rows.find((row) => row.dc === 'ams')!
    expect(latency).toMatchObject({
      fra: { ms: Math.round(fra.ms * 10) / 10, samples: 1, at: fra.at, warm: false },
      ams: { samples: 0, at: ams.at, warm: false }, // the set-up request only: no sample yet
      lon: null,
      syd: null,
    })
    // The exploration turn is still the next request's.
    const next = await fromBerlin(location, '/')
    await next.body?.cancel()
    expect([next.headers.get('x-steering'), next.headers.get('x-datacenter')]).toEqual(['exploration', 'lon'])
  })

  it('says measured once every candidate is warm, with the others it weighed, fastest first', async () => {
    seed('ber-warm')
    const doc = await statusFrom('ber-warm')
    expect(doc.viewer).toMatchObject({
      steeredTo: 'ams',
      reason: 'measured',
      compared: ['ams', 'fra', 'lon'],
    })
    expect(doc.datacenters.find((dc) => dc.id === 'ams')!.latency).toMatchObject({
      ms: 10,
      samples: WARM_SAMPLES,
      warm: true,
    })
    // The request path agrees.
    const res = await fromBerlin('ber-warm', '/')
    await res.body?.cancel()
    expect([res.headers.get('x-steering'), res.headers.get('x-datacenter')]).toEqual(['measured', 'ams'])
  })

  it('says distance when the viewer steers by distance, however warm the estimates', async () => {
    seed('ber-distance')
    const doc = await statusFrom('ber-distance', { 'x-steering-mode': 'distance' })
    expect(doc.viewer).toMatchObject({ steeredTo: 'fra', mode: 'distance', reason: 'distance', compared: [] })
    // The measurements are still shown.
    expect(doc.datacenters.find((dc) => dc.id === 'ams')!.latency).toMatchObject({ ms: 10, warm: true })
  })
})

/** `path` from `geo` through the Worker, with the scope's vantages as its HEALTH. */
async function throughScope(scope: VantageScope, geo: string, path: string) {
  const ctx = createExecutionContext()
  const res = await worker.fetch(
    new Request(`https://edge.test${path}`, { headers: { 'x-client-geo': geo } }),
    { ...env, HEALTH: scope.HEALTH },
    ctx
  )
  await waitOnExecutionContext(ctx)
  return res
}

/** The text of each match of `selector` inside the row of datacenter `dc`. */
const inRow = async (html: string, dc: string, selector: string) =>
  (await select(html, `tbody#datacenters tr[data-dc="${dc}"] ${selector}`)).map((cell) => cell.text)

describe('GET /status: the table by region, with every vantage', () => {
  it('has a header row per region, then its datacenters, each with a dot per vantage and the votes', async () => {
    // Every vantage probes twice, as their alarms would; then the us vantage sees fra fail twice.
    const scope = vantageScope('status-page-dots/')
    for (let round = 0; round < 2; round++)
      for (const region of ['eu', 'us', 'ap']) await scope.stub(region).tick()
    await scope.stub('us').report('fra', 'HTTP 502')
    await scope.stub('us').report('fra', 'connection refused')
    const html = await (await throughScope(scope, '51.51,-0.13', '/status')).text()

    const rows = await select(html, 'tbody#datacenters > tr', ['data-region', 'data-dc'])
    expect(rows.map((row) => row.attrs['data-region'] ?? row.attrs['data-dc'])).toEqual([
      'eu',
      'fra',
      'ams',
      'lon',
      'cut',
      'us',
      'nyc',
      'ap',
      'syd',
    ])
    const headers = await select(html, 'tbody#datacenters tr.region th', ['colspan'])
    expect(headers.map((th) => th.text)).toEqual([
      expect.stringMatching(/^eu · vantage at Frankfurt, heard \d\d:\d\d:\d\d UTC$/),
      expect.stringMatching(/^us · vantage at New York, heard /),
      expect.stringMatching(/^ap · vantage at Sydney, heard /),
    ])
    // Each header spans the table.
    const columns = await select(html, 'table.datacenters thead th')
    for (const th of headers) expect(Number(th.attrs.colspan)).toBe(columns.length)

    // fra: down as the us vantage sees it, up by the majority.
    const dots = async (dc: string) =>
      (await select(html, `tr[data-dc="${dc}"] .dot`, ['aria-label', 'role', 'style'])).map((d) => d.attrs)
    expect((await dots('fra')).map((d) => d['aria-label'])).toEqual([
      'eu: healthy',
      'us: down',
      'ap: healthy',
    ])
    for (const dot of await dots('fra')) expect(dot.role).toBe('img')
    expect((await dots('fra'))[1]!.style).toContain(stateColours.down)
    expect((await dots('nyc')).map((d) => d['aria-label'])).toEqual(['eu: down', 'us: down', 'ap: down'])
    expect(await inRow(html, 'fra', '.badge')).toEqual(['healthy'])
    expect(await inRow(html, 'fra', 'td.votes')).toEqual(['2 up · 1 down'])
    expect(await inRow(html, 'nyc', 'td.votes')).toEqual(['0 up · 3 down'])

    // On the map: fra ringed (the vantages disagree), nyc not (all say down), nor the others.
    const markers = await select(html, '#markers g.dc', ['data-dc', 'data-dissent'])
    const ringed = markers.filter((m) => m.attrs['data-dissent'] !== null).map((m) => m.attrs['data-dc'])
    expect(ringed).toEqual(['fra'])
    expect(await select(html, '#markers g[data-dc="fra"] circle.dissent')).toHaveLength(1)
    expect(await select(html, '#markers g[data-dc="nyc"] circle.dissent')).toHaveLength(0)
    const [title] = await select(html, '#markers g[data-dc="fra"] title')
    expect(title!.text).toBe('Frankfurt: healthy (us sees it down)')
    // A mark per vantage, with its region, at its site.
    const marks = await select(html, '#vantages g.vantage', ['data-vantage', 'class'])
    expect(marks.map((m) => [m.attrs['data-vantage'], m.attrs.class])).toEqual([
      ['eu', 'vantage'],
      ['us', 'vantage'],
      ['ap', 'vantage'],
    ])
    expect((await select(html, '#vantages text')).map((t) => t.text)).toEqual(['eu', 'us', 'ap'])
    expect((await select(html, '#vantages title')).map((t) => t.text)).toEqual([
      'eu vantage: probes from Frankfurt',
      'us vantage: probes from New York',
      'ap vantage: probes from Sydney',
    ])
  })

  it('says when a vantage has not been heard', async () => {
    const html = await (await throughScope(vantageScope('status-page-new/'), '51.51,-0.13', '/status')).text()
    const dots = await select(html, 'tr[data-dc="fra"] .dot', ['aria-label', 'class'])
    // The viewer's own vantage (eu) answered, before any probe; the others never were heard.
    expect(dots.map((d) => d.attrs['aria-label'])).toEqual([
      'eu: healthy (stale)',
      'us: not heard yet',
      'ap: not heard yet',
    ])
    for (const dot of dots) expect(dot.attrs.class).toBe('dot faint')
    expect(await inRow(html, 'fra', 'td.votes')).toEqual(['0 up · 0 down · 3 abstain'])
    const headers = (await select(html, 'tbody#datacenters tr.region th')).map((th) => th.text)
    expect(headers[1]).toBe('us · vantage at New York, not heard yet')
    // On the map, each vantage's mark is faint: none is fresh.
    const marks = await select(html, '#vantages g.vantage', ['class'])
    expect(marks.map((m) => m.attrs.class)).toEqual(['vantage faint', 'vantage faint', 'vantage faint'])
  })
})

describe('GET /status: from your edge location, and why you are served there', () => {
  const page = async (location: string, headers: Record<string, string> = {}) =>
    (await fromBerlin(location, '/status', headers)).text()
  const viewer = async (html: string) => (await select(html, '#viewer'))[0]!.text
  const km = (dc: string) =>
    `${Math.round(
      distanceKm(
        berlin,
        catalogue.find((d) => d.id === dc)!
      )
    ).toLocaleString('en-GB')} km`

  it('says distance, and that nothing is measured yet, before any request', async () => {
    const html = await page('ber-page-cold')
    expect(await viewer(html)).toBe(
      `You (52.52, 13.40) enter the edge at Berlin (ber-page-cold) and are served by Frankfurt (fra): nearest by distance, ${km('fra')} (no measurements yet).`
    )
    expect(await inRow(html, 'lon', 'td.latency')).toEqual([`distance, ${km('lon')}`])
    // The route to fra, with no figure on it.
    expect(await select(html, '#routes path.route')).toHaveLength(1)
    expect(await select(html, '#routes .route-label')).toEqual([])
  })

  it("shows each estimate with its samples once the viewer's requests were measured", async () => {
    const location = 'ber-pg-requests'
    for (let i = 0; i < 3; i++) await (await fromBerlin(location, '/')).body?.cancel()
    const html = await page(location)
    const fra = latencyRows(location).find((row) => row.dc === 'fra')!
    expect(await inRow(html, 'fra', 'td.latency')).toEqual([
      `${Math.round(fra.ms)} ms · 1 sample, warming up`,
    ])
    expect(await inRow(html, 'ams', 'td.latency')).toEqual(['no sample yet']) // its set-up request only
    expect(await inRow(html, 'lon', 'td.latency')).toEqual([`distance, ${km('lon')}`])
    expect(await viewer(html)).toContain(
      `served by Frankfurt (fra): nearest by distance, ${km('fra')} (not enough measurements yet: 0 of 3 nearby datacenters).`
    )
  })

  it('says measured, with the runner-up, once every candidate is warm', async () => {
    seed('ber-page-warm')
    const html = await page('ber-page-warm')
    expect(await viewer(html)).toContain('served by Amsterdam (ams): measured 10 ms (Frankfurt 60 ms).')
    expect(await inRow(html, 'ams', 'td.latency')).toEqual([`10 ms · ${WARM_SAMPLES} samples`])
    expect(await inRow(html, 'lon', 'td.latency')).toEqual([`70 ms · ${WARM_SAMPLES} samples`])
    expect((await select(html, '#routes .route-label')).map((label) => label.text)).toEqual(['10 ms'])
  })

  it('says so when steering by distance is switched on', async () => {
    seed('ber-pg-distance')
    const html = await page('ber-pg-distance', { 'x-steering-mode': 'distance' })
    expect(await viewer(html)).toContain(
      `served by Frankfurt (fra): nearest by distance, ${km('fra')} (steering by distance: measurements are not used).`
    )
  })
})

describe('escaping', () => {
  const hostile = '<script>alert(1)</script>"\'&'
  const [fra, ams] = reachable(europe)
  const doc: StatusDocument = {
    ...documentFor([{ ...fra!, name: hostile }, ams!], { lat: 50, lon: 8, country: hostile }),
    changes: [{ dc: 'fra', at: Date.now(), from: 'healthy', to: 'down', reason: hostile }],
  }
  doc.datacenters[1]!.lastProbe = {
    at: Date.now(),
    ok: false,
    latencyMs: 3,
    error: `"><img src=x onerror=alert(2)>`,
  }

  it.each([
    ['the page', () => statusPage(doc, worldMap([fra!, ams!]), 5_000)],
    ['its live parts', () => liveParts(doc, worldMap([fra!, ams!]))],
  ])('escapes names, countries, probe errors and reasons in %s', async (_, render) => {
    const html = await render()
    expect(html).not.toContain('<script>alert')
    expect(html).not.toContain('<img')
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(await select(html, 'img')).toEqual([])
    expect((await select(html, 'script')).length).toBeLessThanOrEqual(1) // the page's own
    // Each character escaped once, in the cells where it belongs.
    const decoded = (await select(html, 'tbody#datacenters td')).map((td) => td.text).join('|')
    expect(decoded).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;')
  })
})

describe('the map', () => {
  const catalogues = {
    'three in Europe (shared/datacenters.json)': reachable(europe),
    'six on three continents (production)': production,
    'six on three continents': reachable(sixContinents),
  }

  it.each(Object.entries(catalogues))(
    '%s: land from Natural Earth and a marker per datacenter inside the map',
    async (_, catalogue) => {
      const html = await pageFor(catalogue)
      const [svg] = await select(html, 'svg#map', ['viewBox'])
      expect(svg!.attrs.viewBox).toBe(`0 0 ${WIDTH} ${HEIGHT}`)
      const [land] = await select(html, 'svg#map path.land', ['d'])
      // Natural Earth's coastlines: many rings of many points, not a dozen straight-edged shapes.
      const rings = land!.attrs.d!.match(/M/g) ?? []
      const points = land!.attrs.d!.match(/L/g) ?? []
      expect(rings.length).toBeGreaterThan(5)
      expect(points.length).toBeGreaterThan(300)
      const circles = await select(html, '#markers g.dc circle', ['cx', 'cy'])
      const ids = await select(html, '#markers g.dc', ['data-dc'])
      expect(ids.map((g) => g.attrs['data-dc'])).toEqual(catalogue.map((dc) => dc.id))
      for (const { attrs } of circles) {
        const [x, y] = [Number(attrs.cx), Number(attrs.cy)]
        expect(x).toBeGreaterThanOrEqual(MARKER_RADIUS)
        expect(x).toBeLessThanOrEqual(WIDTH - MARKER_RADIUS)
        expect(y).toBeGreaterThanOrEqual(MARKER_RADIUS)
        expect(y).toBeLessThanOrEqual(HEIGHT - MARKER_RADIUS)
      }
    }
  )

  const distance = (a: { x: number; y: number }, b: { x: number; y: number }) =>
    Math.hypot(a.x - b.x, a.y - b.y)

  it('zooms to Europe for three datacenters there, and spans the world for six', () => {
    const three = worldMap(reachable(europe))
    const six = worldMap(reachable(sixContinents))
    const at = (map: typeof three, id: string) => map.markers.find((m) => m.id.startsWith(id))!
    // Frankfurt to London: 640 km. Zoomed to Europe it is a good part of the map's width.
    expect(distance(at(three, 'fra'), at(three, 'lon'))).toBeGreaterThan(WIDTH / 10)
    expect(distance(at(six, 'fra'), at(six, 'lon'))).toBeLessThan(WIDTH / 20)
    // West to east: San Francisco, New York, London, Singapore, across most of the map.
    const xs = ['sfo', 'nyc', 'lon', 'sgp'].map((id) => at(six, id).x)
    expect(xs).toEqual([...xs].sort((a, b) => a - b))
    expect(xs[3]! - xs[0]!).toBeGreaterThan(WIDTH * 0.7)
    // What shows is what the datacenters need: New York is off the European map, London on the world's.
    expect(three.place(-74.01, 40.71)).toBeUndefined()
    expect(six.place(-0.13, 51.51)).toBeDefined()
    // The land path holds what shows: Europe's clipped land is much smaller than the world's.
    expect(three.land.length).toBeLessThan(six.land.length / 3)
  })

  it('places every label near its marker, off the other markers and apart from the other labels', () => {
    for (const catalogue of Object.values(catalogues)) {
      const { markers } = worldMap(catalogue)
      for (const m of markers) {
        expect(distance(m, m.label)).toBeLessThan(MARKER_RADIUS * 5)
        for (const other of markers)
          if (other !== m) expect(distance(other, m.label)).toBeGreaterThan(MARKER_RADIUS)
      }
      const labels = markers.map((m) => m.label)
      for (let i = 0; i < labels.length; i++)
        for (let j = i + 1; j < labels.length; j++)
          expect(
            Math.abs(labels[i]!.x - labels[j]!.x) + Math.abs(labels[i]!.y - labels[j]!.y)
          ).toBeGreaterThan(8)
    }
  })

  /** The box a label's text takes, estimated as the map estimates it (0.6 em per character). */
  const labelBox = (label: MapLabel, text: string, size: number) => {
    const width = text.length * size * 0.6
    const left =
      label.anchor === 'start' ? label.x : label.anchor === 'end' ? label.x - width : label.x - width / 2
    return { left, right: left + width, top: label.y - size * 0.75, bottom: label.y }
  }
  const inside = (p: { x: number; y: number }, box: ReturnType<typeof labelBox>) =>
    p.x > box.left && p.x < box.right && p.y > box.top && p.y < box.bottom

  it("marks each vantage beside its site, off the markers and labels, moving no datacenter's label", () => {
    for (const catalogue of Object.values(catalogues)) {
      const vantages = vantagesOf(catalogue).map((v) => ({ id: v.id, site: v.site.id }))
      const map = worldMap(catalogue, vantages)
      expect(map.markers).toEqual(worldMap(catalogue).markers)
      expect(map.vantages.map((v) => [v.id, v.site])).toEqual(vantages.map((v) => [v.id, v.site]))
      const dcLabels = map.markers.map((m) => labelBox(m.label, m.id, LABEL_SIZE))
      for (const mark of map.vantages) {
        const site = map.markers.find((m) => m.id === mark.site)!
        expect(distance(site, mark)).toBeLessThan(MARKER_RADIUS * 3)
        for (const m of map.markers)
          expect(distance(m, mark)).toBeGreaterThanOrEqual(MARKER_RADIUS + VANTAGE_SIZE)
        for (const box of dcLabels) expect(inside(mark, box)).toBe(false)
        const own = labelBox(mark.label, mark.id, VANTAGE_LABEL_SIZE)
        expect(distance(mark, mark.label)).toBeLessThan(VANTAGE_SIZE * 5)
        for (const m of map.markers) expect(inside(m, own)).toBe(false)
        for (const box of dcLabels)
          expect(
            own.right <= box.left || own.left >= box.right || own.bottom <= box.top || own.top >= box.bottom
          ).toBe(true)
      }
    }
  })

  it('centres the map on the datacenters, across the antimeridian when that is shorter', () => {
    expect(centralMeridian([8.68, 4.9, -0.13])).toBeCloseTo(4.28, 1)
    expect(centralMeridian(sixContinents.map((dc) => dc.lon))).toBeCloseTo(-9.3, 0)
    // Tokyo and San Francisco: the middle of the Pacific, not of Europe.
    expect(centralMeridian([139.69, -122.42])).toBeCloseTo(-171.4, 1)
    expect(centralMeridian([151.21])).toBeCloseTo(151.21, 5)
  })

  it('shows a viewer far from every datacenter by the route towards its datacenter', async () => {
    const catalogue = reachable(europe)
    // Austin, Texas: where wrangler dev places a request that carries no location.
    const html = await pageFor(catalogue, { lat: 30.27, lon: -97.74 })
    expect(await select(html, '#you')).toEqual([]) // off the European map
    const [route] = await select(html, '#routes path.route', ['d'])
    expect(route!.attrs.d).toMatch(/^M/) // the great circle, clipped to the map
  })
})
