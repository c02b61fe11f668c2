import { describe, expect, it } from 'vitest'
import { env, exports } from 'cloudflare:workers'
import { runDurableObjectAlarm } from 'cloudflare:test'

// Its own instance, so these probes and reports do not disturb the "global" one other tests steer by.
const registry = () => env.HEALTH.getByName('health-registry-test')
const state = async (dc: string) => {
  const h = (await registry().snapshot()).datacenters[dc]!
  return h.drained ? 'drained' : h.up ? 'up' : 'down'
}

describe('HealthRegistry: the health truth in a Durable Object', () => {
  it('probes every datacenter from its alarm and takes an unreachable one down after 2 failures', async () => {
    await registry().snapshot() // arms the alarm
    expect(await runDurableObjectAlarm(registry())).toBe(true)
    let snapshot = await registry().snapshot()
    expect(snapshot.datacenters.fra?.lastProbe?.ok).toBe(true)
    expect(snapshot.datacenters.fra?.lastProbe?.latencyMs).toBeTypeOf('number')
    expect(snapshot.datacenters.nyc?.lastProbe?.ok).toBe(false)
    expect(snapshot.datacenters.nyc?.lastProbe?.error).toBeTypeOf('string')
    expect(await state('nyc')).toBe('up') // one failure flips nothing

    expect(await runDurableObjectAlarm(registry())).toBe(true) // the alarm re-armed itself
    snapshot = await registry().snapshot()
    expect(await state('nyc')).toBe('down')
    expect(snapshot.changes[0]).toMatchObject({ dc: 'nyc', from: 'healthy', to: 'down' })
    expect(snapshot.changes[0]!.reason).toMatch(/^probe failed/)
    for (const dc of ['fra', 'ams', 'lon']) expect(await state(dc)).toBe('up')
  })

  it('counts passive failure reports towards going down, and needs 3 good probes to come back', async () => {
    await registry().report('ams', 'HTTP 502')
    expect(await state('ams')).toBe('up')
    await registry().report('ams', 'connection refused')
    expect(await state('ams')).toBe('down')
    expect((await registry().snapshot()).changes[0]!.reason).toBe('request failed: connection refused')
    await runDurableObjectAlarm(registry())
    await runDurableObjectAlarm(registry())
    expect(await state('ams')).toBe('down')
    await runDurableObjectAlarm(registry())
    expect(await state('ams')).toBe('up')
  })

  it('keeps drain state until undrained, whatever the probes say', async () => {
    await registry().setDrained('lon', true)
    await runDurableObjectAlarm(registry())
    expect(await state('lon')).toBe('drained')
    await registry().setDrained('lon', false)
    expect(await state('lon')).toBe('up')
  })

  it('the cron trigger probes too and re-arms the alarm', async () => {
    const res = await exports.default.fetch(new Request('https://edge.test/status.json'))
    expect(res.status).toBe(200)
    const tick = await env.HEALTH.getByName('cron-test').tick()
    expect(tick).toBeUndefined()
    const snapshot = await env.HEALTH.getByName('cron-test').snapshot()
    expect(snapshot.datacenters.fra!.lastProbe?.ok).toBe(true)
  })
})

describe('GET /status.json', () => {
  it('shows every datacenter, its state and last probe, and where the viewer is steered', async () => {
    const res = await exports.default.fetch(
      new Request('https://edge.test/status.json', { headers: { 'x-client-geo': '51.51,-0.13' } })
    )
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const doc = await res.json<{
      viewer: { lat: number; lon: number; steeredTo: string; fallback: boolean }
      datacenters: Array<{ id: string; state: string; lat: number }>
      edge: { requests: number }
    }>()
    expect(doc.viewer).toMatchObject({ lat: 51.51, lon: -0.13, steeredTo: 'lon', fallback: false })
    expect(doc.datacenters.map((d) => d.id)).toEqual(['fra', 'ams', 'lon', 'nyc', 'cut', 'syd'])
    for (const d of doc.datacenters) expect(['healthy', 'degraded', 'down', 'drained']).toContain(d.state)
    expect(doc.edge.requests).toBeGreaterThan(0)
  })
})
