/**
 * The operator's dashboard end to end, in Debian's headless Chromium: a real Prometheus backfilled
 * with a known history (test/support/prometheus.ts), a real web service of one datacenter asking it,
 * and the real Worker as `npm start` runs it (local/edge-dev.ts: wrangler dev, workerd) in front.
 * The page is read without JavaScript (it has none): every panel a chart, every series a path, the
 * legend's latest figures those of the history. Screenshot for a person: test-output/dashboard.png.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser } from 'playwright-core'
import { dashboardPanels } from '#shared/dashboard.ts'
import { edgeSpec } from '../../local/platform-specs.ts'
import { localEnv } from '../../local/env.ts'
import { loadEdgeSecrets } from '../../local/edge-secrets.ts'
import { startProcess, stopProcess, type Supervised } from '../../local/processes.ts'
import { freePort } from '../../local/free-port.ts'
import { waitForHttp } from '../../local/wait.ts'
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts'
import { startService, type TestService } from '../support/backend-service.ts'
import { dashboardHistory, startPrometheus, type TestPrometheus } from '../support/prometheus.ts'
import { screenshotDir } from './scenarios/status-page.ts'

let nats: TestNatsServer
let prometheus: TestPrometheus
let web: TestService
let edge: Supervised
let edgeUrl: string
let dir: string
let browser: Browser

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vtta-dashboard-'))
  const { secrets } = loadEdgeSecrets(dir)
  ;[nats, prometheus] = await Promise.all([
    startNatsServer('dashboard'),
    startPrometheus(dashboardHistory(Math.floor(Date.now() / 60_000) * 60)),
  ])
  web = await startService('web', {
    DC: 'fra',
    NATS_URL: nats.url,
    PROMETHEUS_URL: prometheus.url,
    // The edge's proof, as `npm start` gives both sides.
    ORIGIN_CLIENT_ID: secrets.ORIGIN_CLIENT_ID,
    ORIGIN_CLIENT_SECRET: secrets.ORIGIN_CLIENT_SECRET,
  })
  const port = await freePort()
  edgeUrl = `http://127.0.0.1:${port}`
  mkdirSync(join(dir, 'logs'), { recursive: true })
  edge = startProcess(
    edgeSpec([{ id: 'fra', name: 'Frankfurt', region: 'eu', lat: 50.11, lon: 8.68 }], {
      localDir: dir,
      edgePort: port,
      env: localEnv({}, edgeUrl, secrets).values,
      tunables: { PROBE_INTERVAL_MS: '300', PROBE_TIMEOUT_MS: '500', HEALTH_MEMO_MS: '200' },
      endpoints: () => ({ web: web.url, natsWs: 'ws://127.0.0.1:9' }),
    })
  )
  ;[browser] = await Promise.all([
    chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    }),
    waitForHttp(`${edgeUrl}/status.json`, { timeoutMs: 60_000, what: 'the edge', abort: edge.exited }),
  ])
}, 120_000)

afterAll(async () => {
  await browser?.close()
  if (edge) await stopProcess(edge)
  await web?.stop()
  await prometheus?.stop()
  await nats?.dispose()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('the dashboard in Chromium', () => {
  it('draws every panel from the real Prometheus, and is photographed', { timeout: 60_000 }, async () => {
    const context = await browser.newContext({
      javaScriptEnabled: false,
      viewport: { width: 1280, height: 900 },
    })
    const page = await context.newPage()
    // Reached from the status page's link.
    await page.goto(`${edgeUrl}/status`)
    const res = await Promise.all([page.waitForNavigation(), page.click('a[href="/status/dashboard"]')]).then(
      ([navigation]) => navigation
    )
    expect(res?.status()).toBe(200)
    expect(await page.title()).toBe('vtta.io dashboard')
    expect(await page.locator('#source').textContent()).toContain('From Prometheus in fra')

    const series = async (panel: string) =>
      Promise.all(
        (await page.locator(`svg[data-panel="${panel}"] path.series`).all()).map(async (p) => ({
          label: await p.getAttribute('data-series'),
          d: (await p.getAttribute('d')) ?? '',
        }))
      )
    const expected: Record<string, string[]> = {
      requests: ['ams', 'fra'],
      errors: ['ams', 'fra'],
      imageCacheHitRatio: ['ams', 'fra'],
      consumerPending: ['GITHUB/releases', 'RELEASES/notifier'],
      deadLetters: ['past hour'],
      diskHeadroom: ['ams', 'fra'],
      jetstreamEnabled: ['ams-1', 'fra-1'],
    }
    for (const panel of dashboardPanels) {
      const paths = await series(panel)
      expect(paths.map((p) => p.label)).toEqual(expected[panel])
      // A line over the whole hour: one run, a point a minute.
      for (const p of paths) {
        expect(p.d.match(/M/g)).toHaveLength(1)
        expect(p.d.match(/L/g)?.length).toBeGreaterThanOrEqual(59)
      }
      // Drawn, not merely present: the chart has a size on the page.
      const box = await page.locator(`svg[data-panel="${panel}"]`).boundingBox()
      expect(box?.width).toBeGreaterThan(250)
    }
    const legend = async (panel: string) =>
      (await page.locator(`section[data-panel="${panel}"] .legend li`).allTextContents()).map((t) => t.trim())
    expect(await legend('requests')).toEqual(['ams 3', 'fra 2.1'])
    expect(await legend('imageCacheHitRatio')).toEqual(['ams 0 %', 'fra 75 %'])
    expect(await legend('diskHeadroom')).toEqual(['ams 30 %', 'fra 10 %'])
    expect(await legend('jetstreamEnabled')).toEqual(['ams-1 off', 'fra-1 on'])
    expect(await legend('deadLetters')).toEqual(['past hour 6'])

    mkdirSync(screenshotDir, { recursive: true })
    const file = join(screenshotDir, 'dashboard.png')
    await page.screenshot({ path: file, fullPage: true })
    console.log(`screenshot: ${file}`)

    // Asked again within 30 s, the edge answers from its cache.
    const again = await fetch(`${edgeUrl}/status/dashboard.json`)
    expect(again.headers.get('x-cache')).toBe('HIT')
    await context.close()
  })

  it('says so when the datacenter cannot read its metrics', async () => {
    await prometheus.stop()
    // 6h: a range the edge has not cached.
    const res = await fetch(`${edgeUrl}/status/dashboard?range=6h`)
    expect(res.status).toBe(503)
    expect(await res.text()).toMatch(/data-code="metrics_unavailable"/)
  })
})
