/**
 * Global setup for the edge tests. Runs in Node, not workerd: a real nats-server (WebSocket on)
 * and the real web service of three datacenters, each answering `ping.<dc>` and serving `/`.
 * A fourth datacenter, `nyc`, has NATS but no web service, to prove "no responders".
 */
import type { TestProject } from 'vitest/node'
import { startNatsServer } from '../support/nats-server.ts'
import { startService } from '../support/backend-service.ts'
import catalogue from '../../shared/datacenters.json' with { type: 'json' }

declare module 'vitest' {
  export interface ProvidedContext {
    edgeDatacenters: string
  }
}

export default async function setup(project: TestProject) {
  const nats = await startNatsServer('edge-tests')
  const webs = await Promise.all(
    catalogue.map((dc) => startService('web', { DC: dc.id, DC_NAME: dc.name, NATS_URL: nats.url }))
  )
  const datacenters = [
    ...catalogue.map((dc, i) => ({ ...dc, endpoints: { web: webs[i]!.url, natsWs: nats.wsUrl } })),
    // Reachable NATS, no service: requests there get "no responders". Closed port for its web.
    {
      id: 'nyc',
      name: 'New York',
      lat: 40.71,
      lon: -74.01,
      endpoints: { web: 'http://127.0.0.1:9', natsWs: nats.wsUrl },
    },
  ]
  project.provide('edgeDatacenters', JSON.stringify(datacenters))
  return async () => {
    await Promise.all(webs.map((w) => w.stop()))
    await nats.dispose()
  }
}
