/**
 * `/status/dashboard` in workerd: the charts as the server draws them (read with HTMLRewriter, no
 * script runs), the edge cache in front of the datacenters, and what the page says when no datacenter
 * can give figures. The test web services (global-setup.ts) have no Prometheus, so every one of them
 * answers 503 metrics_unavailable: the route must then try the next without holding it against the
 * datacenter's health. The page drawn from a real, backfilled Prometheus behind a real web service,
 * in Chromium: test/e2e/dashboard.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import { dashboardPanels, dashboardSchema, gridPoints, type Dashboard } from '#shared/dashboard.ts'
import {
  dashboardFailures,
  dashboardPage,
  formatValue,
  roundUp,
  seriesPath,
} from '../../edge/status/dashboard.tsx'
import { availability } from '../../edge/steering/health-view.ts'
import { vantageStub } from '../../edge/vantages/vantage-set.ts'
import { FAILURE_CACHE_SECONDS } from '../../edge/status/dashboard-route.ts'
import { errorOf } from './responses.ts'

const catalogue = JSON.parse(env.DATACENTERS) as Array<{ id: string; endpoints: { web: string } }>
const realWeb = catalogue.find((dc) => dc.id !== 'nyc' && dc.id !== 'syd')!.endpoints.web

/** A datacenter near Boston (or east of it) whose web endpoint is `web`. */
const nearBoston = (id: string, web: string, lon = -71.06) => ({
  id,
  name: id,
  region: 'us',
  lat: 42.36,
  lon,
  endpoints: { web, natsWs: 'ws://127.0.0.1:9' },
})

/** A request from near Boston, against `datacenters` (else the test catalogue) and `vars`. */
async function get(path: string, datacenters?: unknown[], vars: Record<string, string> = {}) {
  const ctx = createExecutionContext()
  const res = await worker.fetch(
    new Request(`https://edge.test${path}`, { headers: { 'x-client-geo': '42.36,-71.06' } }),
    datacenters ? { ...env, ...vars, DATACENTERS: JSON.stringify(datacenters) } : { ...env, ...vars },
    ctx
  )
  await waitOnExecutionContext(ctx)
  return res
}

type Attributes = Record<string, string | null>

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

/** A document of the one-hour grid: every panel has a series, `requests` two, one with a gap. */
function fixture(): Dashboard {
  const points = gridPoints('1h')
  const flat = (v: number) => Array.from({ length: points }, () => v)
  const one = (label: string, v: number) => ({ series: [{ label, values: flat(v) }], truncated: false })
  const withGap = flat(2).map((v, i) => (i >= 20 && i < 30 ? null : v))
  return dashboardSchema.parse({
    range: '1h',
    start: 1_800_000_000 - 3600,
    step: 60,
    points,
    generatedAt: 1_800_000_000_000,
    dc: 'fra',
    panels: {
      requests: {
        series: [
          { label: '<script>alert(1)</script>', values: flat(3) },
          { label: 'fra', values: withGap },
        ],
        truncated: true,
      },
      errors: one('fra', 0.1),
      imageCacheHitRatio: one('fra', 0.75),
      consumerPending: one('GITHUB/releases', 7),
      deadLetters: { series: [], truncated: false },
      diskHeadroom: one('fra', 0.1),
      jetstreamEnabled: one('fra-1', 0),
    },
  })
}

describe('the dashboard page as drawn', () => {
  it('has one chart per panel and one path per series, with a gap where a value is missing', async () => {
    const html = await dashboardPage(fixture())
    expect(html).toMatch(/^<!doctype html><html lang="en">/)
    const charts = await select(html, 'svg[data-panel]', ['data-panel'])
    expect(charts.map((c) => c.attrs['data-panel'])).toEqual([...dashboardPanels])
    const paths = await select(html, 'svg[data-panel="requests"] path.series', ['data-series', 'd'])
    // HTMLRewriter gives attributes as written: escaped.
    expect(paths.map((p) => p.attrs['data-series'])).toEqual(['&lt;script&gt;alert(1)&lt;/script&gt;', 'fra'])
    // A run of values is one M and L to each next point; the gap starts a second run.
    expect(paths[0]!.attrs.d!.match(/M/g)).toHaveLength(1)
    expect(paths[0]!.attrs.d!.match(/L/g)).toHaveLength(gridPoints('1h') - 1)
    expect(paths[1]!.attrs.d!.match(/M/g)).toHaveLength(2)
    // The label is text, never markup; no script anywhere (the page has none of its own).
    expect(await select(html, 'script')).toEqual([])
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    // The legend's latest values, in the panel's unit; a panel with no series says so.
    const legend = await select(html, 'section[data-panel] .legend li', [])
    expect(legend.map((l) => l.text.trim())).toEqual(
      expect.arrayContaining(['fra 75 %', 'GITHUB/releases 7', 'fra-1 off', 'more series not shown'])
    )
    expect((await select(html, 'svg[data-panel="deadLetters"] .empty')).map((e) => e.text)).toEqual([
      'no data',
    ])
    // Disk headroom has the alert's line; links to the other ranges and back to /status.
    expect(await select(html, 'svg[data-panel="diskHeadroom"] line.threshold')).toHaveLength(1)
    const links = await select(html, 'a', ['href'])
    expect(links.map((a) => a.attrs.href)).toEqual(
      expect.arrayContaining(['/status', '/status/dashboard?range=3h', '/status/dashboard?range=6h'])
    )
  })

  it('draws a value at its height: 0 at the bottom, the top of a share at the top', () => {
    expect(seriesPath([0, 1], 1)).toBe('M44.0 130.0L352.0 10.0')
    // Past the top (a bad value) is kept on the chart.
    expect(seriesPath([2, null, 0.5], 1)).toBe('M44.0 10.0M352.0 70.0')
  })

  it('ends the y axis on a round number', () => {
    expect([0.105, 3.15, 6.3, 7.35, 1, 120].map(roundUp)).toEqual([0.12, 4, 8, 8, 1, 120])
  })

  it('formats figures in their unit', () => {
    expect(formatValue(0.756, 'share')).toBe('75.6 %')
    expect(formatValue(2.1234, 'per-second')).toBe('2.12')
    expect(formatValue(123.4, 'count')).toBe('123')
    expect(formatValue(1, 'on-off')).toBe('on')
  })
})

describe('GET /status/dashboard', () => {
  it('draws the figures this edge location has cached, without asking a datacenter', async () => {
    const doc = fixture()
    await caches.default.put(
      new Request('https://edge.test/status/dashboard.json?range=1h'),
      new Response(JSON.stringify(doc), { headers: { 'cache-control': 'max-age=30' } })
    )
    // No datacenter could answer: the figures can only come from the cache.
    const page = await get('/status/dashboard', [nearBoston('dash-none', 'http://127.0.0.1:9')])
    expect(page.status).toBe(200)
    expect(page.headers.get('x-cache')).toBe('HIT')
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    const html = await page.text()
    // Two series of requests, one for each other panel but the dead letters, which have none.
    expect(await select(html, 'path.series')).toHaveLength(7)
    expect(html).toContain('From Prometheus in fra')

    const json = await get('/status/dashboard.json', [nearBoston('dash-none', 'http://127.0.0.1:9')])
    expect(dashboardSchema.parse(await json.json())).toEqual(doc)
  })

  it('ignores a cache entry that is not a dashboard, and says when no Prometheus can answer', async () => {
    await caches.default.put(
      new Request('https://edge.test/status/dashboard.json?range=6h'),
      new Response('{"panels":"<b>"}', { headers: { 'cache-control': 'max-age=30' } })
    )
    // A third one further away: had the first two been marked failing, it would be asked first.
    const datacenters = [
      nearBoston('dash-a', realWeb),
      nearBoston('dash-b', realWeb, -72),
      nearBoston('dash-far', realWeb, -80),
    ]
    const res = await get('/status/dashboard?range=6h', datacenters)
    expect(res.status).toBe(503)
    expect(res.headers.get('x-cache')).toBe('MISS')
    const html = await res.text()
    const [error] = await select(html, '#error', ['data-code'])
    expect(error?.attrs['data-code']).toBe('metrics_unavailable')
    // The code and its one sentence: nothing a datacenter or its Prometheus said.
    expect(error?.text).toBe(`${dashboardFailures.metrics_unavailable} metrics_unavailable`)
    expect(html).not.toMatch(/PROMETHEUS_URL|dash-a|cannot be read/)
    expect(await select(html, 'svg')).toEqual([])
    // Not the datacenters' fault: neither is held out of steering where the request entered (dash-a).
    const fromBoston = { snapshot: undefined, edgeLocation: 'dash-a' }
    expect(datacenters.map((dc) => availability(fromBoston, dc.id))).toEqual(Array(3).fill('available'))

    // The failure is kept a few seconds: asked again, no datacenter is (none could answer this time).
    const again = await get('/status/dashboard.json?range=6h', [
      nearBoston('dash-none', 'http://127.0.0.1:9'),
    ])
    expect(again.status).toBe(503)
    expect(again.headers.get('x-cache')).toBe('HIT')
    expect(await errorOf(again)).toEqual({
      code: 'metrics_unavailable',
      message: dashboardFailures.metrics_unavailable,
    })
    const stored = await caches.default.match(new Request('https://edge.test/status/dashboard.json?range=6h'))
    expect(stored?.headers.get('cache-control')).toBe(`public, max-age=${FAILURE_CACHE_SECONDS}`)
  })

  it('says no datacenter answered when one could not be reached at all', async () => {
    const res = await get('/status/dashboard?range=3h', [
      nearBoston('dash-dead', 'http://127.0.0.1:9'),
      nearBoston('dash-c', realWeb, -72),
    ])
    expect(res.status).toBe(502)
    const html = await res.text()
    const [error] = await select(html, '#error', ['data-code'])
    expect(error?.attrs['data-code']).toBe('datacenter_unreachable')
    expect(error?.text).toBe(`${dashboardFailures.datacenter_unreachable} datacenter_unreachable`)
    expect(html).not.toMatch(/127\.0\.0\.1|dash-dead|dash-c/)
    // Refused, yet left to the probes to judge: not held where the request entered (dash-dead's site).
    expect(availability({ snapshot: undefined, edgeLocation: 'dash-dead' }, 'dash-dead')).toBe('available')
  })

  it('never holds a datacenter whose dashboard answer is slow against its health', async () => {
    // A catalogue datacenter (so the health vantages keep its record) whose web endpoint never answers.
    const [slow, next] = catalogue.filter((dc) => dc.id !== 'nyc' && dc.id !== 'syd')
    // Both placed near Boston in region us: the request's vantage, where a failure would be reported.
    const registry = vantageStub(env, { id: 'us', hint: 'enam' })
    const before = (await registry.snapshot()).datacenters[slow!.id]
    expect(before).toMatchObject({ up: true, failures: 0 })
    await caches.default.delete(new Request('https://edge.test/status/dashboard.json?range=1h'))

    const res = await get(
      '/status/dashboard.json?range=1h',
      [nearBoston(slow!.id, env.SILENT_WEB), nearBoston(next!.id, realWeb, -72)],
      { UPSTREAM_TIMEOUT_MS: '300' }
    )
    expect(res.status).toBe(504)
    expect(await errorOf(res)).toEqual({
      code: 'datacenter_timeout',
      message: dashboardFailures.datacenter_timeout,
    })
    // Steering's view in this isolate and the request's vantage's (what /status and its isolates steer by).
    expect(availability({ snapshot: undefined, edgeLocation: slow!.id }, slow!.id)).toBe('available')
    expect((await registry.snapshot()).datacenters[slow!.id]).toMatchObject({ up: true, failures: 0 })
  })

  it.each(['?range=7d', '?range=', '?range=1h%3Bdrop'])('refuses %s with 400 bad_request', async (query) => {
    const res = await get(`/status/dashboard${query}`)
    expect(res.status).toBe(400)
    expect(await errorOf(res)).toMatchObject({ code: 'bad_request' })
  })

  it('is linked from the status page', async () => {
    const html = await (await get('/status')).text()
    expect((await select(html, 'a[href="/status/dashboard"]')).length).toBe(1)
  })
})
