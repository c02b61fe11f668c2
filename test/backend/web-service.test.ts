import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts'
import { startService, type TestService } from '../support/backend-service.ts'
import { healthDocumentSchema, pingReplySchema, type Heartbeat } from '#shared/schemas.ts'
import { subjects } from '#shared/subjects.ts'
import { natsAuth } from '../support/nats-credentials.ts'

let nats: TestNatsServer
let web: TestService
let nc: NatsConnection

beforeAll(async () => {
  nats = await startNatsServer('web')
  web = await startService('web', {
    DC: 'fra',
    DC_NAME: 'Frankfurt',
    NATS_URL: nats.url,
    HEARTBEAT_INTERVAL_MS: '200',
  })
  nc = await connect({ servers: nats.url, ...natsAuth() })
})
afterAll(async () => {
  await nc?.close()
  await web?.stop()
  await nats?.dispose()
})

const health = async () => {
  const res = await fetch(`${web.url}/health`)
  return { status: res.status, doc: healthDocumentSchema.parse(await res.json()) }
}
const beat = (service: Heartbeat['service'], state: Heartbeat['state'] = 'ready') =>
  nc.publish(
    subjects.heartbeat('fra', service),
    JSON.stringify({ dc: 'fra', service, state, at: Date.now() })
  )

describe('web service', () => {
  it('serves a landing page naming its datacenter', async () => {
    const res = await fetch(`${web.url}/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    expect(res.headers.get('x-datacenter')).toBe('fra')
    const html = await res.text()
    expect(html).toContain('<title>vtta.io</title>')
    expect(html).toContain('Frankfurt (fra)')
  })

  it('serves the datacenter health document', async () => {
    const { status, doc } = await health()
    expect(status).toBe(200)
    expect(doc).toMatchObject({ dc: 'fra', status: 'ok', nats: { connected: true, jetstream: true } })
    expect(doc.services.web).toMatchObject({ state: 'ready' })
  })

  it('lists the other services of its datacenter from their heartbeats, and marks silent ones stale', async () => {
    beat('images')
    await expect.poll(async () => (await health()).doc.services.images?.state).toBe('ready')
    expect((await health()).doc.status).toBe('ok')
    // No more heartbeats: after three intervals the service is stale and the datacenter degraded.
    await expect
      .poll(async () => (await health()).doc.services.images?.state, { timeout: 3_000 })
      .toBe('stale')
    expect((await health()).doc.status).toBe('degraded')
  })

  it('ignores heartbeats that are malformed or claim another datacenter', async () => {
    nc.publish(subjects.heartbeat('fra', 'releases'), '{not json')
    nc.publish(
      subjects.heartbeat('fra', 'notifier'),
      JSON.stringify({ dc: 'ams', service: 'notifier', state: 'ready', at: 1 })
    )
    nc.publish(
      subjects.heartbeat('fra', 'releases'),
      JSON.stringify({ dc: 'fra', service: 'evil', state: 'ready', at: 1 })
    )
    await nc.flush()
    const { doc } = await health()
    expect(Object.keys(doc.services)).not.toContain('notifier')
    expect(Object.keys(doc.services)).not.toContain('evil')
    await expect
      .poll(async () => (await web.logs()).some((l) => l.msg === 'ignored malformed heartbeat'))
      .toBe(true)
  })

  it('answers ping.<dc> over NATS', async () => {
    const msg = await nc.request(subjects.ping('fra'), JSON.stringify({ from: 'test', sentAt: Date.now() }), {
      timeout: 2_000,
    })
    expect(pingReplySchema.parse(msg.json())).toMatchObject({ dc: 'fra', service: 'web' })
  })

  it.each(['', 'null', '{"from":1}', '[1,2]', 'x'.repeat(70_000)])(
    'answers a malformed ping %# with an error reply',
    async (payload) => {
      const msg = await nc.request(subjects.ping('fra'), payload, { timeout: 2_000 })
      expect(msg.json()).toMatchObject({ error: { code: 'bad_request' } })
    }
  )

  it('answers unknown routes with a JSON 404', async () => {
    const res = await fetch(`${web.url}/wp-admin/../../etc/passwd`)
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({ error: { code: 'not_found' } })
  })

  it('refuses an oversized request head and keeps serving', async () => {
    const res = await fetch(`${web.url}/`, { headers: { 'x-junk': 'x'.repeat(40_000) } })
    expect(res.status).toBe(431)
    expect((await fetch(`${web.url}/healthz`)).status).toBe(200)
  })

  it('exposes Prometheus metrics with bounded route labels', async () => {
    await fetch(`${web.url}/random-${Math.random()}`)
    const text = await (await fetch(`${web.url}/metrics`)).text()
    expect(text).toMatch(
      /http_requests_total\{route="\/health",method="GET",status="200",service="web",dc="fra"\} \d+/
    )
    expect(text).toMatch(/http_requests_total\{route="unmatched",method="GET",status="404"/)
    expect(text).not.toMatch(/random-0\./)
    expect(text).toContain('nats_reconnects_total')
    expect(text).toContain('http_request_duration_seconds_bucket')
    expect(text).toContain('process_resident_memory_bytes')
  })
})
