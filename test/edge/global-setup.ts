/**
 * Global setup for the edge tests. Runs in Node, not workerd: a real nats-server (WebSocket on)
 * and the real web service of three datacenters, each answering `ping.<dc>` and serving `/`.
 * A fourth datacenter, `nyc`, has NATS but no web service, to prove "no responders". A fifth, `syd`
 * (far from the others, so only requests from near Sydney go there first), has a web service and the
 * real image service, fetching from a local origin server. A silent web endpoint accepts every request
 * and never answers, for time-outs.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { githubStreamConfig } from '#shared/releases.ts'
import { startNatsServer } from '../support/nats-server.ts'
import { startService } from '../support/backend-service.ts'
import { natsAuth, testNatsCredentials } from '../support/nats-credentials.ts'
import { startOriginServer } from '../support/origin-server.ts'
import sharp from 'sharp'
import { seedRegistry } from '../support/seed-registry.ts'
import catalogue from '#shared/datacenters.json' with { type: 'json' }

declare module 'vitest' {
  export interface ProvidedContext {
    edgeDatacenters: string
    /** JSON: { <case>: { headers: Record<string,string>, body: string } } from test/fixtures/github/deliveries. */
    githubDeliveries: string
    /** The edge's NATS user seed, trusted by the test nats-server. */
    natsEdgeSeed: string
    /** The origin `syd`'s image service may fetch from: `/files/icon.png`, `/slow/<ms>/files/icon.png`. */
    imageOrigin: string
    /** The `syd` image service's internal HTTP address (`/metrics`). */
    imageService: string
    /** `http://127.0.0.1:<port>`: accepts every request and never answers it. */
    silentWeb: string
  }
}

export default async function setup(project: TestProject) {
  const nats = await startNatsServer('edge-tests')
  // A datacenter cut off from the stream's leader, as its own server sees it: JetStream answers
  // nothing for the delivery subject (no GITHUB stream here).
  const cutOff = await startNatsServer('edge-tests-cut-off')
  const webs = await Promise.all(
    catalogue.map((dc) => startService('web', { DC: dc.id, DC_NAME: dc.name, NATS_URL: nats.url }))
  )
  const origin = await startOriginServer({
    'icon.png': {
      body: await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } })
        .png()
        .toBuffer(),
      contentType: 'image/png',
    },
  })
  // Requests are held until the client gives up or the server closes.
  const silent = createServer(() => {})
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const sydney = { DC: 'syd', NATS_URL: nats.url }
  // Several regions in this catalogue: the edge asks `images.region.ap.transform` for syd.
  // Its own web service is fine (the edge's probes find it up); only its JetStream has no stream.
  const cutOffWeb = await startService('web', { DC: 'cut', DC_NAME: 'Cut off', NATS_URL: cutOff.url })
  const [sydWeb, sydImages] = await Promise.all([
    startService('web', { ...sydney, DC_NAME: 'Sydney' }),
    startService('images', {
      ...sydney,
      REGION: 'ap',
      IMAGE_SOURCE_HOSTS: origin.origin,
      IMAGE_CONCURRENCY: '2',
    }),
  ])
  const datacenters = [
    ...catalogue.map((dc, i) => ({ ...dc, endpoints: { web: webs[i]!.url, natsWs: nats.wsUrl } })),
    // Reachable NATS, no service: requests there get "no responders". Closed port for its web.
    {
      id: 'nyc',
      name: 'New York',
      region: 'us',
      lat: 40.71,
      lon: -74.01,
      endpoints: { web: 'http://127.0.0.1:9', natsWs: nats.wsUrl },
    },
    // Far from every other (Ushuaia): only clients placed there are steered to it first.
    {
      id: 'cut',
      name: 'Cut off',
      region: 'eu',
      lat: -54.8,
      lon: -68.3,
      endpoints: { web: cutOffWeb.url, natsWs: cutOff.wsUrl },
    },
    {
      id: 'syd',
      name: 'Sydney',
      region: 'ap',
      lat: -33.87,
      lon: 151.21,
      endpoints: { web: sydWeb.url, natsWs: nats.wsUrl },
    },
  ]
  project.provide('edgeDatacenters', JSON.stringify(datacenters))
  project.provide('githubDeliveries', JSON.stringify(readDeliveries()))
  project.provide('natsEdgeSeed', testNatsCredentials().seed('edge'))
  project.provide('imageOrigin', origin.url)
  project.provide('imageService', sydImages.internalUrl)
  project.provide('silentWeb', `http://127.0.0.1:${(silent.address() as AddressInfo).port}`)

  // The stream the edge publishes deliveries to (the release service creates it on the platform).
  const nc = await connect({ servers: nats.url, ...natsAuth() })
  await (await jetstreamManager(nc)).streams.add(githubStreamConfig(1))
  await seedRegistry(nc)
  await nc.close()
  return async () => {
    await Promise.all([...webs, cutOffWeb, sydWeb, sydImages].map((w) => w.stop()))
    await origin.close()
    silent.closeAllConnections()
    await new Promise((resolve) => silent.close(resolve))
    await Promise.all([nats.dispose(), cutOff.dispose()])
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
