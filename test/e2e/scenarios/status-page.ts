/** Issue 4: the operator's status page, in a real headless Chromium (Debian's), driven by playwright-core. */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser, type Page } from 'playwright-core'
import { projectRoot } from '../../../local/platform.ts'
import { swarm } from '../../support/supervisor.ts'
import type { E2E } from '../context.ts'

/** Screenshots land here, for a person to look at after the run. */
export const screenshotDir = join(projectRoot, 'test-output')

export function statusPageScenarios(e2e: E2E) {
  describe('the status page in Chromium', () => {
    let browser: Browser
    let page: Page

    beforeAll(async () => {
      browser = await chromium.launch({
        executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      })
      // A viewer in Amsterdam (the header stands in for request.cf, as ALLOW_GEO_OVERRIDE allows locally).
      const context = await browser.newContext({
        extraHTTPHeaders: { 'x-client-geo': '52.37,4.90' },
        viewport: { width: 1280, height: 900 },
      })
      page = await context.newPage()
      mkdirSync(screenshotDir, { recursive: true })
    })
    afterAll(async () => {
      await browser?.close()
    })

    const marker = (dc: string) => page.locator(`#markers g[data-dc="${dc}"]`)

    it(
      'shows every datacenter on the map, coloured by state, and where the viewer is served',
      { timeout: 60_000 },
      async () => {
        await page.goto(`${e2e.edge}/status`)
        // The scenarios before this one killed and froze datacenters: give JetStream time to settle.
        for (const dc of ['fra', 'ams', 'lon'])
          await expect
            .poll(() => marker(dc).getAttribute('data-state'), { timeout: 30_000, interval: 250 })
            .toBe('healthy')
        expect(await marker('ams').locator('circle').getAttribute('fill')).toBe('#16a34a')
        expect(await page.locator('#viewer').textContent()).toContain('served by Amsterdam (ams)')
        expect(await page.locator('#you').count()).toBe(1)
        expect(await page.locator('#datacenters tr[data-dc]').count()).toBe(3)
        const file = join(screenshotDir, 'status-healthy.png')
        await page.screenshot({ path: file, fullPage: true })
        console.log(`screenshot: ${file}`)
      }
    )

    it('turns a killed datacenter red within the health window, by itself', async () => {
      const { probeIntervalMs, probeTimeoutMs, downAfter, memoMs } = e2e.health
      const windowMs =
        downAfter * (probeIntervalMs + probeTimeoutMs) + memoMs + Math.min(probeIntervalMs, 5_000) + 2_000
      const killedAt = Date.now()
      await swarm(e2e.localDir, 'kill', 'fra')
      await expect
        .poll(() => marker('fra').getAttribute('data-state'), { timeout: windowMs, interval: 200 })
        .toBe('down')
      console.log(
        `fra turned red on the page ${Date.now() - killedAt} ms after the kill (window ${windowMs} ms)`
      )
      expect(await marker('fra').locator('circle').getAttribute('fill')).toBe('#dc2626')
      expect(await page.locator('#changes').textContent()).toContain('fra')
      const file = join(screenshotDir, 'status-fra-down.png')
      await page.screenshot({ path: file, fullPage: true })
      console.log(`screenshot: ${file}`)
      await swarm(e2e.localDir, 'revive', 'fra')
      await expect
        .poll(() => marker('fra').getAttribute('data-state'), { timeout: 30_000, interval: 250 })
        .toBe('healthy')
    })
  })
}
