/**
 * The nats-exporter against a real three-server cluster with authentication (as `npm start` runs it):
 * each datacenter's exporter reports its own server's figures, the ones the server itself reports
 * on its monitoring port; a stopped server is `nats_exporter_server_up 0` with no stale figures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { startNatsCluster, type TestNatsCluster } from '../../support/nats-cluster.ts'
import { natsAuth } from '../../support/nats-credentials.ts'
import { startExporter, type TestExporter } from './exporter-process.ts'

let cluster: TestNatsCluster
let exporters: TestExporter[]
let operator: NatsConnection

beforeAll(async () => {
  cluster = await startNatsCluster('exporter')
  exporters = await Promise.all(
    cluster.nodes.map((node) => startExporter({ DC: node.dc, NATS_URL: node.url, NATS_SERVER_NAME: node.dc }))
  )
  operator = await connect({ servers: cluster.urls, ...natsAuth() })
}, 60_000)
afterAll(async () => {
  await operator?.close()
  await Promise.all((exporters ?? []).map((e) => e.stop()))
  await cluster?.dispose()
})

const poll = { timeout: 15_000, interval: 250 }
const monitor = async (i: number, path: string) =>
  (await (await fetch(`${cluster.nodes[i]!.monitorUrl}${path}`)).json()) as Record<string, unknown>

describe('the server figures', () => {
  it('reports its own server, labelled with its datacenter and server name, as the server reports itself', async () => {
    for (const [i, exporter] of exporters.entries()) {
      const dc = cluster.nodes[i]!.dc
      const samples = await exporter.scrape()
      const nats = samples.filter((s) => s.name.startsWith('nats_'))
      expect(nats.length).toBeGreaterThan(10)
      for (const s of samples) expect(s.labels).toMatchObject({ dc, server_name: dc })
      const varz = await monitor(i, '/varz')
      const jsz = await monitor(i, '/jsz')
      const value = (name: string, labels: Record<string, string> = {}) => exporter.value(name, labels)
      expect(await value('nats_exporter_server_up')).toBe(1)
      expect(await value('nats_server_info', { version: String(varz.version) })).toBe(1)
      expect(await value('nats_server_routes')).toBe(2)
      expect(await value('nats_server_cluster_size')).toBe(3)
      expect(await value('nats_server_gateways')).toBe(0)
      expect(await value('nats_server_slow_consumers_total')).toBe(varz.slow_consumers)
      expect(await value('nats_server_connections')).toBeGreaterThanOrEqual(1)
      expect(await value('nats_server_mem_bytes')).toBeGreaterThan(1_000_000)
      expect(await value('nats_server_cpu_percent')).toBeGreaterThanOrEqual(0)
      expect(await value('nats_jetstream_enabled')).toBe(1)
      expect(await value('nats_jetstream_storage_max_bytes')).toBe(
        (jsz.config as { max_storage: number }).max_storage
      )
      expect(await value('nats_jetstream_storage_used_bytes')).toBeGreaterThanOrEqual(0)
      // No TLS listener configured: no certificate figure at all.
      expect(await value('nats_websocket_certificate_expiry_timestamp_seconds')).toBeUndefined()
    }
  })

  it('counts the connections of its own server only', async () => {
    const before = await Promise.all(exporters.map((e) => e.value('nats_server_connections')))
    const extra = await Promise.all(
      [1, 2, 3].map(() => connect({ servers: cluster.nodes[0]!.url, ...natsAuth() }))
    )
    try {
      await expect.poll(() => exporters[0]!.value('nats_server_connections'), poll).toBe(before[0]! + 3)
      expect(await exporters[1]!.value('nats_server_connections')).toBe(before[1])
    } finally {
      await Promise.all(extra.map((nc) => nc.close()))
    }
  })
})

describe('JetStream figures', () => {
  it("reports each replica's messages, bytes and currency, and a consumer's pending and unacknowledged", async () => {
    const jsm = await jetstreamManager(operator)
    await jsm.streams.add({ name: 'EXPORTED', subjects: ['exported.>'], num_replicas: 3 })
    const js = jetstream(operator)
    for (let i = 0; i < 7; i++) await js.publish('exported.x', `message ${i}`)
    await jsm.consumers.add('EXPORTED', {
      durable_name: 'worker',
      ack_policy: AckPolicy.Explicit,
      num_replicas: 3,
    })
    const consumer = await js.consumers.get('EXPORTED', 'worker')
    // Two delivered and never acknowledged: 5 pending delivery, 2 waiting for an ack.
    const batch = await consumer.fetch({ max_messages: 2, expires: 2_000 })
    let delivered = 0
    for await (const m of batch) if (m) delivered++
    expect(delivered).toBe(2)

    for (const exporter of exporters) {
      const stream = { stream: 'EXPORTED' }
      await expect.poll(() => exporter.value('nats_jetstream_stream_messages', stream), poll).toBe(7)
      expect(await exporter.value('nats_jetstream_stream_bytes', stream)).toBeGreaterThan(
        7 * 'message 0'.length
      )
      await expect.poll(() => exporter.value('nats_jetstream_stream_replica_current', stream), poll).toBe(1)
      expect(await exporter.value('nats_jetstream_stream_replica_lag', stream)).toBe(0)
    }
    // A consumer is reported once, by the exporter of the server that leads it (a follower's count lags).
    const leader = (await jsm.consumers.info('EXPORTED', 'worker')).cluster?.leader
    const worker = { stream: 'EXPORTED', consumer: 'worker' }
    for (const [i, exporter] of exporters.entries()) {
      const leads = cluster.nodes[i]!.dc === leader
      await expect
        .poll(() => exporter.value('nats_jetstream_consumer_pending', worker), poll)
        .toBe(leads ? 5 : undefined)
      expect(await exporter.value('nats_jetstream_consumer_ack_pending', worker)).toBe(leads ? 2 : undefined)
    }
    // Each exporter reads its own server's figures: the leader's view of the other replicas says the same.
    const info = await jsm.streams.info('EXPORTED')
    expect(info.cluster?.replicas?.every((r) => r.current)).toBe(true)
  })
})

describe('when a server goes', () => {
  it('the others count one route less, its own exporter says server_up 0 without stale figures, and both recover', async () => {
    const lon = cluster.nodes[2]!
    await lon.stop()
    try {
      for (const exporter of exporters.slice(0, 2))
        await expect.poll(() => exporter.value('nats_server_routes'), poll).toBe(1)
      // The cluster still knows three servers: the gap between routes and size is what an alert sees.
      expect(await exporters[0]!.value('nats_server_cluster_size')).toBe(3)

      const t0 = Date.now()
      const samples = await exporters[2]!.scrape()
      expect(Date.now() - t0).toBeLessThan(5_000)
      expect(samples.find((s) => s.name === 'nats_exporter_server_up')?.value).toBe(0)
      // The exporter's own connection counters (nats_reconnects_total...) stay; the server's figures go.
      const stale = samples.filter((s) => /^nats_(server|jetstream|websocket)_/.test(s.name))
      expect(stale).toEqual([])
      expect(await exporters[2]!.log()).toMatch(/nats-server does not answer/)
      // Still ready: saying the server is gone is its job (a restart would only blind the monitoring).
      expect((await fetch(`${exporters[2]!.url}/readyz`)).status).toBe(200)
    } finally {
      await lon.restart()
    }
    await expect.poll(() => exporters[2]!.value('nats_exporter_server_up'), poll).toBe(1)
    for (const exporter of exporters)
      await expect.poll(() => exporter.value('nats_server_routes'), poll).toBe(2)
    await expect
      .poll(() => exporters[2]!.value('nats_jetstream_stream_messages', { stream: 'EXPORTED' }), poll)
      .toBe(7)
  }, 60_000)
})
