/**
 * From a scrape to the exposition: the figures the cluster tests cannot force on a real server (a
 * replica behind its leader, a leaderless stream, a consumer led elsewhere, a live gateway), and
 * one set of server requests per /metrics however many metrics ask.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { registerNatsMetrics, sharedScrape, type Scrape } from '../../../backend/nats-exporter/metrics.ts'
import {
  gatewayzSchema,
  jszSchema,
  routezSchema,
  varzSchema,
} from '../../../backend/nats-exporter/server-responses.ts'
import { replicaKey } from '../../../backend/nats-exporter/server-snapshot.ts'
import { parseMetrics } from './exporter-process.ts'

const stream = (name: string, leader: string, consumers: Array<{ name: string; leader: string }> = []) => ({
  name,
  cluster: { leader, replicas: [] },
  state: { messages: 10, bytes: 100, last_seq: 10 },
  consumer_detail: consumers.map((c) => ({
    name: c.name,
    num_pending: 4,
    num_ack_pending: 1,
    cluster: { leader: c.leader },
  })),
})

const scrapeOf = (): Scrape => ({
  server: {
    up: true,
    serverName: 'ams',
    varz: varzSchema.parse({
      server_id: 'N1',
      server_name: 'ams',
      version: '2.9.10',
      connections: 3,
      slow_consumers: 2,
      mem: 1e7,
      cpu: 1.5,
      routes: 1,
    }),
    jsz: jszSchema.parse({
      server_id: 'N1',
      storage: 500,
      config: { max_storage: 1000 },
      account_details: [
        {
          name: 'VTTA',
          stream_detail: [
            stream('BEHIND', 'fra', [
              { name: 'mine', leader: 'ams' },
              { name: 'theirs', leader: 'fra' },
            ]),
            stream('LEADERLESS', ''),
          ],
        },
      ],
    }),
    routez: routezSchema.parse({ server_id: 'N1', num_routes: 1, routes: [{ remote_id: 'N2' }] }),
    gatewayz: gatewayzSchema.parse({
      server_id: 'N1',
      outbound_gateways: { east: { connection: { name: 'x' } }, west: {} },
    }),
    replicas: new Map([
      [replicaKey('VTTA', 'BEHIND'), { current: false, lag: 12 }],
      [replicaKey('VTTA', 'LEADERLESS'), { current: false }],
    ]),
  },
})

const expose = async (scrape: () => Promise<Scrape>) => {
  const registry = new Registry()
  registerNatsMetrics(registry, scrape)
  return parseMetrics(await registry.metrics())
}
const find = (samples: ReturnType<typeof parseMetrics>, name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))

describe('the nats metrics', () => {
  it('report a replica behind its leader, and no lag for one whose leader nobody knows', async () => {
    const samples = await expose(() => Promise.resolve(scrapeOf()))
    expect(find(samples, 'nats_jetstream_stream_replica_lag', { stream: 'BEHIND' })[0]?.value).toBe(12)
    expect(find(samples, 'nats_jetstream_stream_replica_current', { stream: 'BEHIND' })[0]?.value).toBe(0)
    expect(find(samples, 'nats_jetstream_stream_replica_current', { stream: 'LEADERLESS' })[0]?.value).toBe(0)
    expect(find(samples, 'nats_jetstream_stream_replica_lag', { stream: 'LEADERLESS' })).toEqual([])
  })

  it('report the consumers this server leads only', async () => {
    const samples = await expose(() => Promise.resolve(scrapeOf()))
    expect(find(samples, 'nats_jetstream_consumer_pending').map((s) => [s.labels.consumer, s.value])).toEqual(
      [['mine', 4]]
    )
    expect(find(samples, 'nats_jetstream_consumer_ack_pending').map((s) => s.labels.consumer)).toEqual([
      'mine',
    ])
  })

  it('count gateways with a connection, and take the server figures as they came', async () => {
    const samples = await expose(() => Promise.resolve(scrapeOf()))
    const one = (name: string) => find(samples, name)[0]?.value
    expect(one('nats_server_gateways')).toBe(1)
    expect(one('nats_server_slow_consumers_total')).toBe(2)
    expect(one('nats_server_cpu_percent')).toBe(1.5)
    expect(one('nats_jetstream_storage_used_bytes')).toBe(500)
    expect(one('nats_jetstream_storage_max_bytes')).toBe(1000)
    // No JetStream meta group in this answer: the routed peers and itself.
    expect(one('nats_server_cluster_size')).toBe(2)
  })

  it('count a peer once however many pooled routes lead to it (nats-server 2.10)', async () => {
    const pooled: Scrape = scrapeOf()
    if (!pooled.server.up) throw new Error('the fixture scrape is up')
    pooled.server.routez = routezSchema.parse({
      server_id: 'N1',
      num_routes: 4,
      routes: [{ remote_id: 'N2' }, { remote_id: 'N2' }, { remote_id: 'N2' }, { remote_id: 'N3' }],
    })
    const samples = await expose(() => Promise.resolve(pooled))
    expect(find(samples, 'nats_server_routes')[0]?.value).toBe(2)
  })

  it('keep nothing of an earlier scrape once the server stops answering', async () => {
    let answer: Scrape = scrapeOf()
    const registry = new Registry()
    registerNatsMetrics(registry, () => Promise.resolve(answer))
    expect(parseMetrics(await registry.metrics()).length).toBeGreaterThan(15)
    answer = { server: { up: false, reason: 'timeout' } }
    expect(parseMetrics(await registry.metrics())).toEqual([
      { name: 'nats_exporter_server_up', labels: {}, value: 0 },
    ])
  })

  it('ask the server once per /metrics, and again for the next one', async () => {
    let asked = 0
    const scrape = sharedScrape(() => {
      asked++
      return Promise.resolve(scrapeOf())
    }, 50)
    const registry = new Registry()
    registerNatsMetrics(registry, scrape)
    await registry.metrics()
    expect(asked).toBe(1)
    await sleep(60)
    await registry.metrics()
    expect(asked).toBe(2)
  })
})
