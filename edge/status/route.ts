/**
 * `/status` (the operator's page), `/status/live` (its changing parts, which the page's script fetches
 * to refresh itself) and `/status.json` (the same data, machine-readable). Public and read-only: they
 * show states, latencies and counters, nothing secret. The viewer's location is honoured from
 * x-client-geo as everywhere else, so the page shows where a given client would be served.
 * `/status/dashboard`: the operator's charts from Prometheus (dashboard-route.ts).
 */
import { Hono, type Context } from 'hono'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import type { AppEnv } from '../env.ts'
import { clientLocation } from '../client-location.ts'
import { healthSnapshot } from '../steering/health-view.ts'
import { isolateLatency } from '../latency/estimates.ts'
import { steeringModeOf } from '../latency/mode.ts'
import { statusDocument } from './document.ts'
import { liveParts, statusPage } from './page.tsx'
import { worldMap } from './world-map.ts'
import { dashboard } from './dashboard-route.ts'
import { vantagesOf } from '../vantages/vantage-set.ts'

export const status = new Hono<AppEnv>()

const noStore = { 'cache-control': 'no-store' }

/** The status document for this viewer, from this isolate's health memo and latency table. */
async function currentStatus(c: Context<AppEnv>) {
  const config = c.get('config')
  return statusDocument({
    datacenters: config.datacenters,
    health: await healthSnapshot(c),
    viewer: clientLocation(c.req.raw, config.allowGeoOverride),
    edgeLocation: c.get('edgeLocation'),
    latency: isolateLatency,
    mode: steeringModeOf(c.req.raw, config),
    probeIntervalMs: config.health.probeIntervalMs,
  })
}

/** The catalogue's map, with a mark for each vantage at its site. */
const mapOf = (datacenters: ReachableDatacenter[]) =>
  worldMap(
    datacenters,
    vantagesOf(datacenters).map((vantage) => ({ id: vantage.id, site: vantage.site.id }))
  )

status.get('/status.json', async (c) => c.json(await currentStatus(c), 200, noStore))

status.get('/status', async (c) => {
  const { datacenters, health } = c.get('config')
  const refreshMs = Math.max(1_000, Math.min(health.probeIntervalMs, 5_000))
  return c.html(await statusPage(await currentStatus(c), mapOf(datacenters), refreshMs), 200, noStore)
})

status.route('/', dashboard)

status.get('/status/live', async (c) =>
  c.html(await liveParts(await currentStatus(c), mapOf(c.get('config').datacenters)), 200, noStore)
)
