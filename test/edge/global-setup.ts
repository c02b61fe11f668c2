/**
 * Global setup for the edge tests. Runs in Node, not workerd: a real nats-server (WebSocket on)
 * and the real web service of three datacenters, each answering `ping.<dc>` and serving `/`.
 * A fourth datacenter, `nyc`, has NATS but no web service, to prove "no responders".
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { githubStreamConfig } from '#shared/releases.ts'
import { startNatsServer } from '../support/nats-server.ts'
import { startService } from '../support/backend-service.ts'
import { natsAuth, testNatsCredentials } from '../support/nats-credentials.ts'
import catalogue from '#shared/datacenters.json' with { type: 'json' }

declare module 'vitest' {
  export interface ProvidedContext {
    edgeDatacenters: string
    /** JSON: { <case>: { headers: Record<string,string>, body: string } } from test/fixtures/github/deliveries. */
    githubDeliveries: string
    /** The edge's NATS user seed, trusted by the test nats-server. */
    natsEdgeSeed: string
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
  project.provide('githubDeliveries', JSON.stringify(readDeliveries()))
  project.provide('natsEdgeSeed', testNatsCredentials().seed('edge'))

  // The stream the edge publishes deliveries to (the release service creates it on the platform).
  const nc = await connect({ servers: nats.url, ...natsAuth() })
  await (await jetstreamManager(nc)).streams.add(githubStreamConfig(1))
  await nc.close()
  return async () => {
    await Promise.all(webs.map((w) => w.stop()))
    await nats.dispose()
  }
}

/** The signed fixture deliveries; body.json holds the exact signed bytes. */
function readDeliveries(): Record<string, { headers: Record<string, string>; body: string }> {
  const dir = join(import.meta.dirname, '..', 'fixtures', 'github', 'deliveries')
  const cases = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory())
  return Object.fromEntries(
    cases.map((d) => [
      d.name,
      {
        headers: JSON.parse(readFileSync(join(dir, d.name, 'headers.json'), 'utf8')) as Record<
          string,
          string
        >,
        body: readFileSync(join(dir, d.name, 'body.json'), 'utf8'),
      },
    ])
  )
}
