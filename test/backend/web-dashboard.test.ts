/**
 * The web service's `GET /api/dashboard`: against a real Prometheus whose history is backfilled
 * (test/support/prometheus.ts), so every figure is known; then against a hostile stand-in that
 * answers too much, too slowly, or the wrong thing; without Prometheus; with it down; and with
 * query parameters a client should not be able to send.
 */
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { dashboardSchema, gridPoints, MAX_SERIES, type Dashboard } from '#shared/dashboard.ts'
import { unstable_readConfig } from 'wrangler'
import {
  dashboardConfig,
  MAX_ANSWER_BYTES,
  panelQueries,
  PROMETHEUS_TIMEOUT_CEILING_MS,
} from '../../backend/web/dashboard.ts'
import { queryRange } from '../../backend/web/dashboard-prometheus.ts'
import { httpErrors } from '../../backend/runtime/http-errors.ts'
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts'
import { startService, type TestService } from '../support/backend-service.ts'
import { originProofHeaders } from '../support/origin-proof.ts'
import {
  dashboardHistory,
  expectedFigures,
  startPrometheus,
  type TestPrometheus,
} from '../support/prometheus.ts'

type Mode = 'oversized' | 'oversized-declared' | 'slow' | 'not-json' | 'vector' | 'refused' | 'many'

/** A Prometheus stand-in that misbehaves as told, and records every query it is sent. */
async function hostilePrometheus() {
  const state = { mode: 'many' as Mode, queries: [] as string[] }
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    state.queries.push(url.searchParams.get('query') ?? '')
    const [start, step] = [Number(url.searchParams.get('start')), Number(url.searchParams.get('step'))]
    switch (state.mode) {
      case 'oversized': {
        // Streamed with no length: the cap has to count.
        res.writeHead(200, { 'content-type': 'application/json' })
        const chunk = Buffer.alloc(64 * 1024, 0x20)
        for (let i = 0; i < 40; i++) res.write(chunk)
        return res.end('{}')
      }
      case 'oversized-declared':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(3 * 1024 * 1024) })
        return res.end(Buffer.alloc(3 * 1024 * 1024, 0x20))
      case 'slow':
        return // never answers
      case 'not-json':
        return void res.end('<html>proxy error</html>')
      case 'vector':
        return json(res, 200, { status: 'success', data: { resultType: 'vector', result: [] } })
      case 'refused':
        // With more text than a log line should carry.
        return json(res, 400, {
          status: 'error',
          errorType: 'bad_data',
          error: `parse error ${'x'.repeat(5000)}`,
        })
      case 'many':
        // More series than a panel keeps, hostile labels, and values that are not numbers.
        return json(res, 200, {
          status: 'success',
          data: {
            resultType: 'matrix',
            result: Array.from({ length: MAX_SERIES + 6 }, (_, i) => ({
              metric: {
                dc: `<script>alert(${String(i).padStart(2, '0')})</script>`,
                stream: 'S',
                consumer: 'c',
                nodename: 'n'.repeat(500),
                server_name: 's',
              },
              values: [
                [start, 'NaN'],
                [start + step, '+Inf'],
                [start + 2 * step, '4'],
                // Off the grid: dropped.
                [start - 10 * step, '9'],
              ],
            })),
          },
        })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, state }
}

let nats: TestNatsServer
let prometheus: TestPrometheus
let hostile: Awaited<ReturnType<typeof hostilePrometheus>>
let web: TestService
let webHostile: TestService
let webUnset: TestService
let webDown: TestService

beforeAll(async () => {
  nats = await startNatsServer('web-dashboard')
  ;[prometheus, hostile] = await Promise.all([
    startPrometheus(dashboardHistory(Math.floor(Date.now() / 60_000) * 60)),
    hostilePrometheus(),
  ])
  const base = { NATS_URL: nats.url, HEARTBEAT_INTERVAL_MS: '500' }
  ;[web, webHostile, webUnset, webDown] = await Promise.all([
    startService('web', { ...base, DC: 'fra', PROMETHEUS_URL: prometheus.url }),
    startService('web', { ...base, DC: 'ams', PROMETHEUS_URL: hostile.url, PROMETHEUS_TIMEOUT_MS: '1500' }),
    startService('web', { ...base, DC: 'lon' }),
    // A closed port: nothing listens on the discard port here.
    startService('web', { ...base, DC: 'par', PROMETHEUS_URL: 'http://127.0.0.1:9/' }),
  ])
}, 60_000)
afterAll(async () => {
  await Promise.all([web, webHostile, webUnset, webDown].map((s) => s?.stop()))
  hostile?.server.closeAllConnections()
  hostile?.server.close()
  await prometheus?.stop()
  await nats?.dispose()
})

const get = (service: TestService, query = '') =>
  fetch(`${service.url}/api/dashboard${query}`, { headers: originProofHeaders() })

async function dashboard(service: TestService, query = ''): Promise<Dashboard> {
  const res = await get(service, query)
  expect(res.status).toBe(200)
  expect(res.headers.get('cache-control')).toBe('no-store')
  return dashboardSchema.parse(await res.json())
}

/** A panel's series as label -> values. */
const seriesOf = (doc: Dashboard, panel: keyof Dashboard['panels']) =>
  Object.fromEntries(doc.panels[panel].series.map((s) => [s.label, s.values]))

describe('GET /api/dashboard against a real Prometheus', () => {
  it('reads every panel of the last hour from the backfilled history', async () => {
    const doc = await dashboard(web)
    expect(doc).toMatchObject({ range: '1h', step: 60, points: gridPoints('1h'), dc: 'fra' })
    expect(doc.start % 60).toBe(0)
    expect(Math.abs(doc.start + 3600 - Date.now() / 1000)).toBeLessThan(120)

    const last = (values: Array<number | null> | undefined) => values?.at(-1)
    const first = (values: Array<number | null> | undefined) => values?.[0]
    const close = (n: number): unknown => expect.closeTo(n, 6)

    const requests = seriesOf(doc, 'requests')
    expect(Object.keys(requests)).toEqual(['ams', 'fra'])
    expect(requests.ams!.every((v) => v !== null && Math.abs(v - expectedFigures.requests.ams) < 1e-9)).toBe(
      true
    )
    expect(first(requests.fra)).toEqual(close(expectedFigures.requests.fra.hourAgo))
    expect(last(requests.fra)).toEqual(close(expectedFigures.requests.fra.now))

    const errors = seriesOf(doc, 'errors')
    expect(last(errors.fra)).toEqual(close(expectedFigures.errors.fra))
    expect(last(errors.ams)).toEqual(close(expectedFigures.errors.ams))

    const hits = seriesOf(doc, 'imageCacheHitRatio')
    expect(last(hits.fra)).toEqual(close(expectedFigures.imageCacheHitRatio.fra))
    expect(last(hits.ams)).toEqual(close(expectedFigures.imageCacheHitRatio.ams))

    const pending = seriesOf(doc, 'consumerPending')
    expect(Object.keys(pending)).toEqual(Object.keys(expectedFigures.consumerPending))
    expect(last(pending['GITHUB/releases'])).toBe(expectedFigures.consumerPending['GITHUB/releases'])
    expect(last(pending['RELEASES/notifier'])).toBe(0)

    expect(last(seriesOf(doc, 'deadLetters')['past hour'])).toEqual(
      expect.closeTo(expectedFigures.deadLetters['past hour'], 3)
    )

    const disk = seriesOf(doc, 'diskHeadroom')
    // fra's fullest real filesystem (/var/lib/docker), not its nearly full tmpfs.
    expect(Object.keys(disk)).toEqual(['ams', 'fra'])
    expect(last(disk.fra)).toEqual(close(expectedFigures.diskHeadroom.fra))
    expect(last(disk.ams)).toEqual(close(expectedFigures.diskHeadroom.ams.now))

    const jetstream = seriesOf(doc, 'jetstreamEnabled')
    expect(first(jetstream['ams-1'])).toBe(expectedFigures.jetstreamEnabled['ams-1'].hourAgo)
    expect(last(jetstream['ams-1'])).toBe(expectedFigures.jetstreamEnabled['ams-1'].now)
    expect(jetstream['fra-1']!.every((v) => v === 1)).toBe(true)

    // Nothing is missing in the middle of a history that covers the whole range.
    for (const panel of Object.values(doc.panels))
      for (const series of panel.series) expect(series.values.slice(1, -1)).not.toContain(null)
  })

  it('reads six hours on a coarser grid', async () => {
    const doc = await dashboard(web, '?range=6h')
    expect(doc).toMatchObject({ range: '6h', step: 300, points: 73 })
    const disk = seriesOf(doc, 'diskHeadroom')
    expect(disk.ams![0]).toEqual(expect.closeTo(expectedFigures.diskHeadroom.ams.sixHoursAgo, 2))
    expect(disk.ams!.at(-1)).toEqual(expect.closeTo(expectedFigures.diskHeadroom.ams.now, 6))
  })

  it.each([
    ['?range=7d', 'invalid_range'],
    ['?range=', 'invalid_range'],
    ['?range=%00', 'invalid_range'],
    ['?range=1h&range=6h', 'invalid_range'],
    ['?query=up', 'bad_request'],
    ['?range=1h&query=count(up)', 'bad_request'],
    ['?range[$ne]=1h', 'bad_request'],
  ])('refuses %s with 400 %s', async (query, code) => {
    const res = await get(web, query)
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: { code } })
  })

  it('answers only the edge', async () => {
    const res = await fetch(`${web.url}/api/dashboard`)
    expect(res.status).toBe(403)
    expect(await res.json()).toMatchObject({ error: { code: 'origin_proof_required' } })
  })
})

/** An error answer: its code and that code's fixed sentence, nothing of what went wrong inside. */
async function expectFixedError(res: Response, code: 'metrics_unavailable' | 'metrics_timeout') {
  expect(res.status).toBe(httpErrors[code].status)
  expect(await res.json()).toEqual({ error: { code, message: httpErrors[code].message } })
}

/** The service's log entry of a Prometheus failure whose detail matches, once it is written. */
async function failureLogged(service: TestService, detail: RegExp) {
  const find = async () =>
    (await service.logs()).find(
      (e) => e.msg === 'dashboard: Prometheus failed' && typeof e.detail === 'string' && detail.test(e.detail)
    )
  await expect.poll(find).toBeDefined()
  return (await find())!
}

describe('GET /api/dashboard when Prometheus cannot answer', () => {
  it('answers 503 metrics_unavailable when PROMETHEUS_URL is not set, and says why in its log', async () => {
    const res = await get(webUnset)
    expect(res.headers.get('retry-after')).toBe('30')
    await expectFixedError(res, 'metrics_unavailable')
    expect(JSON.stringify(await webUnset.logs())).toContain('PROMETHEUS_URL is not set')
  })

  it('answers 503 metrics_unavailable when Prometheus is down, the address for the log only', async () => {
    await expectFixedError(await get(webDown), 'metrics_unavailable')
    expect(await failureLogged(webDown, /cannot be reached/)).toMatchObject({
      level: 'warn',
      kind: 'unreachable',
    })
  })

  it('answers 503 metrics_unavailable to an unusable answer, and answers so again without asking', async () => {
    hostile.state.mode = 'refused'
    hostile.state.queries = []
    await expectFixedError(await get(webHostile), 'metrics_unavailable')
    const logged = await failureLogged(webHostile, /HTTP 400, bad_data: parse error/)
    expect(logged).toMatchObject({ kind: 'invalid', range: '1h' })
    expect(String(logged.detail).length).toBeLessThanOrEqual(500)
    const asked = hostile.state.queries.length
    expect(asked).toBeGreaterThan(0)

    // Prometheus would answer now, but the failure is kept a few seconds: a burst of public hits
    // costs no round of queries, and no log line each.
    hostile.state.mode = 'many'
    const again = await Promise.all(Array.from({ length: 4 }, () => get(webHostile)))
    for (const res of again) await expectFixedError(res, 'metrics_unavailable')
    expect(hostile.state.queries).toHaveLength(asked)
    const failures = (await webHostile.logs()).filter((e) => e.msg === 'dashboard: Prometheus failed')
    expect(failures).toHaveLength(1)
  })

  it('answers 504 metrics_timeout when Prometheus is too slow, without waiting for it', async () => {
    hostile.state.mode = 'slow'
    const started = Date.now()
    await expectFixedError(await get(webHostile, '?range=6h'), 'metrics_timeout')
    expect(Date.now() - started).toBeLessThan(3_000)
    hostile.server.closeAllConnections()
  })

  it('sends only its fixed queries, once for a burst, and keeps a panel to MAX_SERIES series', async () => {
    hostile.state.mode = 'many'
    hostile.state.queries = []
    const answers = await Promise.all(Array.from({ length: 8 }, () => get(webHostile, '?range=3h')))
    expect(answers.map((res) => res.status)).toEqual(Array(8).fill(200))
    // Eight requests, one round of queries: exactly the fixed set.
    expect(hostile.state.queries.sort()).toEqual(
      Object.values(panelQueries)
        .map((q) => q.query)
        .sort()
    )
    // And kept: asked again, Prometheus is not.
    await dashboard(webHostile, '?range=3h')
    expect(hostile.state.queries).toHaveLength(Object.keys(panelQueries).length)

    const doc = dashboardSchema.parse(await answers[0]!.json())
    const requests = doc.panels.requests
    expect(requests.truncated).toBe(true)
    expect(requests.series).toHaveLength(MAX_SERIES)
    // As data, for the page to escape: the first labels in order, the NaN and +Inf as no value.
    expect(requests.series[0]).toMatchObject({ label: '<script>alert(00)</script>' })
    expect(requests.series[0]!.values.slice(0, 4)).toEqual([null, null, 4, null])
    expect(doc.panels.diskHeadroom.series[0]!.label).toHaveLength(200)
  })
})

describe('queryRange: what a Prometheus answer is taken for', () => {
  const ask = (base: string, timeoutMs = 1_500) =>
    queryRange(
      base,
      { query: 'up', start: 1_800_000_000, end: 1_800_000_060, step: 60 },
      { signal: AbortSignal.timeout(timeoutMs), maxBytes: MAX_ANSWER_BYTES }
    )

  it.each([
    ['oversized', /larger than 1048576 bytes/],
    ['oversized-declared', /larger than 1048576 bytes/],
    ['not-json', /not JSON/],
    ['vector', /not a range vector/],
    ['refused', /^HTTP 400, bad_data: parse error x+$/],
  ] as const)('an answer %s is invalid', async (mode, message) => {
    hostile.state.mode = mode
    await expect(ask(hostile.url)).rejects.toMatchObject({
      kind: 'invalid',
      message: expect.stringMatching(message) as string,
    })
  })

  it('no answer in time is a timeout, a closed port unreachable', async () => {
    hostile.state.mode = 'slow'
    await expect(ask(hostile.url, 200)).rejects.toMatchObject({ kind: 'timeout' })
    hostile.server.closeAllConnections()
    await expect(ask('http://127.0.0.1:9/')).rejects.toMatchObject({
      kind: 'unreachable',
      message: expect.stringMatching(/cannot be reached/) as string,
    })
  })
})

describe('PROMETHEUS_TIMEOUT_MS', () => {
  it("stays under the edge's upstream time-out in every wrangler environment, by default and at most", () => {
    // Production sets it; the default environment leaves it to the edge's default (5 s) or sets it.
    const upstream = (env?: string): number | undefined =>
      z
        .object({ vars: z.object({ UPSTREAM_TIMEOUT_MS: z.coerce.number().int().optional() }) })
        .parse(unstable_readConfig({ config: 'wrangler.toml', env }, { hideWarnings: true })).vars
        .UPSTREAM_TIMEOUT_MS
    expect(upstream('production')).toBeGreaterThan(PROMETHEUS_TIMEOUT_CEILING_MS)
    expect(upstream() ?? 5_000).toBeGreaterThan(PROMETHEUS_TIMEOUT_CEILING_MS)
    expect(dashboardConfig.PROMETHEUS_TIMEOUT_MS.parse(undefined)).toBe(3_000)
  })

  it('refuses a deadline above the ceiling: the service does not start', async () => {
    const bad = await startService(
      'web',
      {
        NATS_URL: nats.url,
        DC: 'fra',
        PROMETHEUS_URL: 'http://127.0.0.1:9/',
        PROMETHEUS_TIMEOUT_MS: String(PROMETHEUS_TIMEOUT_CEILING_MS + 1),
      },
      { waitReady: false }
    )
    expect(await bad.proc.exited).toBe('exited with code 78')
    expect(JSON.stringify(await bad.logs())).toContain('PROMETHEUS_TIMEOUT_MS')
  })
})

describe('PROMETHEUS_URL at start-up', () => {
  it.each(['ftp://prometheus:9090', 'not a url'])('refuses %s: the service does not start', async (value) => {
    const bad = await startService(
      'web',
      { NATS_URL: nats.url, DC: 'fra', PROMETHEUS_URL: value },
      { waitReady: false }
    )
    expect(await bad.proc.exited).toBe('exited with code 78')
    expect(JSON.stringify(await bad.logs())).toContain('PROMETHEUS_URL')
  })
})
