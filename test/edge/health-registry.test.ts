/**
 * One health vantage, a HealthRegistry Durable Object (edge/steering/health-registry.ts): its probes and
 * their hysteresis in its own view, passive reports, drains, the cron backstop, and the retirement of
 * an object that is no vantage. The majority over several vantages: vantages.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { env, exports } from 'cloudflare:workers'
import { createScheduledController, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import { vantageScope } from './vantage-scope.ts'

// A set of vantages of its own, so these probes and reports disturb none that other tests steer by.
const scope = vantageScope('health-registry-test/')
const eu = () => scope.stub('eu')
/** A datacenter as eu's own view holds it. */
const seen = async (dc: string) => {
  const h = (await eu().snapshot()).views.eu!.datacenters[dc]!
  return h.drained ? 'drained' : h.up ? 'up' : 'down'
}
/** A datacenter as the verdict holds it. */
const verdict = async (dc: string) => {
  const h = (await eu().snapshot()).datacenters[dc]!
  return h.drained ? 'drained' : h.up ? 'up' : 'down'
}

describe('HealthRegistry: one vantage of the health truth', () => {
  it('probes every datacenter from its alarm and sees an unreachable one down after 2 failures', async () => {
    const first = await eu().snapshot() // arms the alarm
    expect(first.vantage).toBe('eu')
    expect(await runDurableObjectAlarm(eu())).toBe(true)
    let snapshot = await eu().snapshot()
    const own = snapshot.views.eu!
    expect(own.datacenters.fra?.lastProbe?.ok).toBe(true)
    expect(own.datacenters.fra?.lastProbe?.latencyMs).toBeTypeOf('number')
    expect(own.datacenters.nyc?.lastProbe?.ok).toBe(false)
    expect(own.datacenters.nyc?.lastProbe?.error).toBeTypeOf('string')
    expect(await seen('nyc')).toBe('up') // one failure flips nothing

    expect(await runDurableObjectAlarm(eu())).toBe(true) // the alarm re-armed itself
    snapshot = await eu().snapshot()
    expect(await seen('nyc')).toBe('down')
    // Its view changed, and so did the verdict: no other vantage has observed anything yet.
    const [verdictChange, viewChange] = snapshot.changes
    expect(viewChange).toMatchObject({ dc: 'nyc', vantage: 'eu', from: 'healthy', to: 'down' })
    expect(viewChange!.reason).toMatch(/^probe failed/)
    expect(verdictChange).toMatchObject({ dc: 'nyc', from: 'healthy', to: 'down' })
    expect(verdictChange!.vantage).toBeUndefined()
    expect(verdictChange!.reason).toMatch(/^down: down in 1 of 3 views \(2 abstaining\)$/)
    expect(snapshot.votes.nyc).toEqual({ up: 0, down: 1, abstain: 2 })
    for (const dc of ['fra', 'ams', 'lon', 'syd']) expect(await seen(dc)).toBe('up')
  })

  it('counts passive failure reports towards going down, and needs 3 good probes to come back', async () => {
    await eu().report('ams', 'HTTP 502')
    expect(await seen('ams')).toBe('up')
    await eu().report('ams', 'connection refused')
    expect(await seen('ams')).toBe('down')
    const change = (await eu().snapshot()).changes.find((c) => c.vantage === 'eu')
    expect(change).toMatchObject({ dc: 'ams', reason: 'request failed: connection refused' })
    await runDurableObjectAlarm(eu())
    await runDurableObjectAlarm(eu())
    expect(await seen('ams')).toBe('down')
    await runDurableObjectAlarm(eu())
    expect(await seen('ams')).toBe('up')
  })

  it('keeps drain state until undrained, whatever the probes say', async () => {
    await eu().setDrained('lon', true)
    await runDurableObjectAlarm(eu())
    expect(await verdict('lon')).toBe('drained')
    await eu().setDrained('lon', false)
    expect(await verdict('lon')).toBe('up')
  })

  it('takes the later of two drains, and an older stamp changes nothing', async () => {
    await eu().setDrained('fra', true, 2_000)
    await eu().setDrained('fra', false, 1_000)
    expect(await verdict('fra')).toBe('drained')
    await eu().setDrained('fra', false, 2_000) // the same stamp: the later call wins in one view
    expect(await verdict('fra')).toBe('up')
  })
})

describe('the cron trigger', () => {
  it('ticks every vantage: each probes now and re-arms its alarm', async () => {
    const cron = vantageScope('health-registry-cron/')
    await worker.scheduled(createScheduledController(), { ...env, HEALTH: cron.HEALTH })
    for (const region of ['eu', 'us', 'ap']) {
      const snapshot = await cron.stub(region).snapshot()
      expect(snapshot.views[region]!.datacenters.fra!.lastProbe?.ok).toBe(true)
      expect(await runDurableObjectAlarm(cron.stub(region))).toBe(true)
    }
  })
})

describe('an object that is no vantage', () => {
  it('the single registry of old ("global") deletes its alarm and storage at its next alarm', async () => {
    const old = env.HEALTH.getByName('global')
    // As a deployment before vantages left it: its state, and an alarm that would probe forever.
    await runInDurableObject(old, async (_instance, state) => {
      await state.storage.put('state', { version: 7, datacenters: {}, changes: [] })
      await state.storage.setAlarm(Date.now() + 60_000)
    })
    expect(await runDurableObjectAlarm(old)).toBe(true)
    const left = await runInDurableObject(old, async (_instance, state) => ({
      alarm: await state.storage.getAlarm(),
      keys: [...(await state.storage.list()).keys()],
    }))
    expect(left).toEqual({ alarm: null, keys: [] })
    expect(await runDurableObjectAlarm(old)).toBe(false)
    // Asked anyway, it has no view and takes nothing.
    await old.report('fra', 'HTTP 502')
    expect(await old.snapshot()).toMatchObject({ vantage: '', datacenters: {}, views: {} })
    expect(await runDurableObjectAlarm(old)).toBe(false)
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
