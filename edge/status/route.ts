/**
 * `/status` (the operator's page) and `/status.json` (the same, machine-readable). Public and
 * read-only: they show states and latencies, nothing secret. The viewer's location is honoured
 * from x-client-geo as everywhere else, so `/status?` shows where a given client would be served.
 */
import { Hono, type Context } from 'hono'
import type { AppEnv } from '../env.ts'
import { clientLocation } from '../client-location.ts'
import { healthSnapshot } from '../steering/health-view.ts'
import { statusDocument } from './status-document.ts'
import { statusPage } from './page.ts'

export const status = new Hono<AppEnv>()

const noStore = { 'cache-control': 'no-store' }

/** The status document for this viewer, from this isolate's health memo. */
async function currentStatus(c: Context<AppEnv>) {
  const config = c.get('config')
  return statusDocument(
    config.datacenters,
    await healthSnapshot(c),
    clientLocation(c.req.raw, config.allowGeoOverride)
  )
}

status.get('/status.json', async (c) => c.json(await currentStatus(c), 200, noStore))

status.get('/status', async (c) => {
  const refreshMs = Math.max(1_000, Math.min(c.get('config').health.probeIntervalMs, 5_000))
  return c.html(statusPage(await currentStatus(c), refreshMs), 200, noStore)
})
