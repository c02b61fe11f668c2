/**
 * `/status` (the operator's page) and `/status.json` (the same, machine-readable). Public and
 * read-only: they show states and latencies, nothing secret. The viewer's location is honoured
 * from x-client-geo as everywhere else, so `/status?` shows where a given client would be served.
 */
import { Hono } from 'hono'
import type { AppEnv } from '../env.ts'
import { clientLocation } from '../client-location.ts'
import { healthSnapshot } from '../steering/health-view.ts'
import { statusDocument } from '../status/status-document.ts'
import { statusPage } from '../status/page.ts'

export const status = new Hono<AppEnv>()

const noStore = { 'cache-control': 'no-store' }

status.get('/status.json', async (c) => {
  const config = c.get('config')
  const doc = statusDocument(
    config.datacenters,
    await healthSnapshot(c),
    clientLocation(c.req.raw, config.allowGeoOverride)
  )
  return c.json(doc, 200, noStore)
})

status.get('/status', async (c) => {
  const config = c.get('config')
  const doc = statusDocument(
    config.datacenters,
    await healthSnapshot(c),
    clientLocation(c.req.raw, config.allowGeoOverride)
  )
  return c.html(
    statusPage(doc, Math.max(1_000, Math.min(config.health.probeIntervalMs, 5_000))),
    200,
    noStore
  )
})
