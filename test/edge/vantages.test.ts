/**
 * Health from several vantages (issue #16), with real Durable Objects: one vantage per region of the
 * test catalogue (eu at fra, us at nyc, ap at syd), each a set of its own (vantage-scope.ts), so what
 * one case takes down is down for nobody else. Each case first has every vantage probe twice, as
 * their alarms would: then every view has observed every datacenter, and nyc (no web service) is down
 * in all of them. The pure majority rule: verdict.test.ts.
 *
 * Where an object starts is not observable on one machine (workerd has no locations); what is
 * asserted is what the edge asks for: each vantage by its name with its region's hint.
 */
import { describe, expect, it } from 'vitest'
import { env } from 'cloudflare:workers'
import { createExecutionContext, runDurableObjectAlarm, waitOnExecutionContext } from 'cloudflare:test'
import world from '#shared/datacenters.world.json' with { type: 'json' }
import worker from '../../edge/index.ts'
import type { Bindings } from '../../edge/env.ts'
import { replaceSnapshot } from '../../edge/steering/health-view.ts'
import { nearestVantage } from '../../edge/vantages/nearest-vantage.ts'
import { vantagesOf, vantageStub } from '../../edge/vantages/vantage-set.ts'
import type { HealthSnapshot } from '../../edge/vantages/views.ts'
import { catalogue, vantageScope, type VantageScope } from './vantage-scope.ts'
import { errorOf } from './responses.ts'

const newYork = '40.71,-74.01'
const london = '51.51,-0.13'

/** A scope whose every vantage has probed twice and shared its view. */
async function ready(prefix: string, scope = vantageScope(prefix)): Promise<VantageScope> {
  for (let round = 0; round < 2; round++)
    for (const region of ['eu', 'us', 'ap']) await scope.stub(region).tick()
  return scope
}

/** Each vantage's view of `dc` in `snapshot`: up or down. */
const views = (snapshot: HealthSnapshot, dc: string) =>
  Object.fromEntries(
    Object.entries(snapshot.views).map(([id, view]) => [id, view?.datacenters[dc]?.up ? 'up' : 'down'])
  )

/** `method path` from `geo` through the Worker, with the scope's vantages as its HEALTH. */
async function request(scope: Pick<Bindings, 'HEALTH'>, geo: string, path = '/', method = 'GET') {
  const ctx = createExecutionContext()
  const headers: Record<string, string> = { 'x-client-geo': geo }
  if (method === 'POST') headers.authorization = `Bearer ${env.ADMIN_TOKEN!}`
  const res = await worker.fetch(
    new Request(`https://edge.test${path}`, { method, headers }),
    { ...env, HEALTH: scope.HEALTH },
    ctx
  )
  await waitOnExecutionContext(ctx)
  return res
}

/** Has this isolate's memo of each vantage take its current snapshot, as after an operator change. */
async function refreshMemos(scope: VantageScope) {
  for (const region of ['eu', 'us', 'ap']) replaceSnapshot(scope, await scope.stub(region).snapshot())
}

describe('a datacenter seen down from one region only', () => {
  it('is down in that vantage view only; every snapshot shows each view, the votes and the verdict', async () => {
    const scope = await ready('vantages-one/')
    await scope.stub('us').report('fra', 'HTTP 502')
    await scope.stub('us').report('fra', 'connection refused')
    for (const region of ['eu', 'us', 'ap']) {
      const snapshot = await scope.stub(region).snapshot()
      expect(snapshot.vantage).toBe(region)
      expect(views(snapshot, 'fra')).toEqual({ eu: 'up', us: 'down', ap: 'up' })
      expect(snapshot.votes.fra).toEqual({ up: 2, down: 1, abstain: 0 })
      expect(snapshot.datacenters.fra).toMatchObject({ up: true, drained: false })
      // nyc, which no vantage can reach, is down by every view.
      expect(views(snapshot, 'nyc')).toEqual({ eu: 'down', us: 'down', ap: 'down' })
      expect(snapshot.votes.nyc).toEqual({ up: 0, down: 3, abstain: 0 })
      expect(snapshot.datacenters.nyc!.up).toBe(false)
    }
  })

  it('is avoided by requests whose vantage sees it down and kept by the others; down for all at two', async () => {
    const scope = await ready('vantages-steer/')
    await refreshMemos(scope)
    // nyc is down everywhere: New York is served from lon, London from lon.
    let fromNewYork = await request(scope, newYork)
    expect(fromNewYork.headers.get('x-datacenter')).toBe('lon')
    expect(fromNewYork.headers.get('x-failover-from')).toBeNull()

    // us (New York's vantage) sees lon down: New York steers around it, London keeps it.
    await scope.stub('us').report('lon', 'HTTP 502')
    await scope.stub('us').report('lon', 'connection refused')
    await refreshMemos(scope)
    fromNewYork = await request(scope, newYork)
    expect(fromNewYork.status).toBe(200)
    expect(fromNewYork.headers.get('x-datacenter')).toBe('ams')
    expect(fromNewYork.headers.get('x-failover-from')).toBeNull()
    expect((await request(scope, london)).headers.get('x-datacenter')).toBe('lon')

    // ap sees it down too: two of three, down for everyone.
    await scope.stub('ap').report('lon', 'HTTP 502')
    await scope.stub('ap').report('lon', 'connection refused')
    await refreshMemos(scope)
    expect((await scope.stub('eu').snapshot()).datacenters.lon!.up).toBe(false)
    const fromLondon = await request(scope, london)
    expect(fromLondon.headers.get('x-datacenter')).toBe('ams')
    expect(fromLondon.headers.get('x-failover-from')).toBeNull()
    expect((await request(scope, newYork)).headers.get('x-datacenter')).toBe('ams')
  })

  it('comes back once the views that saw it down have had UP_AFTER good probes', async () => {
    const scope = await ready('vantages-back/')
    for (const region of ['us', 'ap']) {
      await scope.stub(region).report('lon', 'HTTP 502')
      await scope.stub(region).report('lon', 'connection refused')
    }
    const eu = scope.stub('eu')
    expect((await eu.snapshot()).datacenters.lon!.up).toBe(false)
    // Each alarm probes lon (which answers) and offers the view to eu.
    for (let round = 1; round <= 2; round++) {
      for (const region of ['us', 'ap']) expect(await runDurableObjectAlarm(scope.stub(region))).toBe(true)
      expect((await eu.snapshot()).datacenters.lon!.up).toBe(false)
    }
    for (const region of ['us', 'ap']) await runDurableObjectAlarm(scope.stub(region))
    const snapshot = await eu.snapshot()
    expect(views(snapshot, 'lon')).toEqual({ eu: 'up', us: 'up', ap: 'up' })
    expect(snapshot.datacenters.lon!.up).toBe(true)
    expect(snapshot.changes.find((c) => c.dc === 'lon' && c.vantage === undefined)).toMatchObject({
      from: 'down',
      to: 'healthy',
    })
  })
})

describe('passive failures on the request path', () => {
  it('count in the requester vantage view only', async () => {
    const scope = vantageScope('vantages-passive/')
    // Sydney's vantage is ap; the request fails over from a datacenter there whose web is refused.
    const sydney = catalogue.find((dc) => dc.id === 'syd')!
    const datacenters = [
      ...catalogue.filter((dc) => dc.id !== 'syd'),
      { ...sydney, endpoints: { ...sydney.endpoints, web: 'http://127.0.0.1:9' } },
    ]
    const ctx = createExecutionContext()
    const res = await worker.fetch(
      new Request('https://edge.test/', { headers: { 'x-client-geo': '-33.87,151.21' } }),
      { ...env, HEALTH: scope.HEALTH, DATACENTERS: JSON.stringify(datacenters) },
      ctx
    )
    await waitOnExecutionContext(ctx)
    expect(res.headers.get('x-failover-from')).toBe('syd')
    const snapshot = await scope.stub('ap').snapshot()
    expect(snapshot.views.ap!.datacenters.syd).toMatchObject({ failures: 1, up: true })
    const eu = await scope.stub('eu').snapshot()
    expect(eu.views.eu!.datacenters.syd!.failures).toBe(0)
  })
})

describe('drains across vantages', () => {
  it('a drain only one vantage took reaches the others at its next exchange; the latest stamp wins', async () => {
    const scope = await ready('vantages-drain/')
    const at = Date.now()
    await scope.stub('eu').setDrained('ams', true, at)
    expect((await scope.stub('eu').snapshot()).datacenters.ams!.drained).toBe(true)
    expect((await scope.stub('us').snapshot()).datacenters.ams!.drained).toBe(false)
    await runDurableObjectAlarm(scope.stub('eu'))
    expect((await scope.stub('us').snapshot()).datacenters.ams!.drained).toBe(true)
    // A later undrain only us took wins at eu once us has shared its view, though eu's own says drained.
    await scope.stub('us').setDrained('ams', false, at + 1)
    await runDurableObjectAlarm(scope.stub('us'))
    const eu = await scope.stub('eu').snapshot()
    expect(eu.views.eu!.datacenters.ams!.drained).toBe(true)
    expect(eu.datacenters.ams).toMatchObject({ drained: false, drainedAt: at + 1 })
  })

  it('the operator API writes every vantage and says which took it', async () => {
    type Stub = ReturnType<Bindings['HEALTH']['getByName']>
    const cut = { setDrained: () => Promise.reject(new Error('cut off')) } as unknown as Stub
    const scope = vantageScope('vantages-admin/', (name) => (name === 'vantage:us' ? cut : undefined))
    const res = await request(scope, london, '/admin/datacenters/lon/drain', 'POST')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({
      dc: 'lon',
      state: 'drained',
      vantages: { eu: 'ok', us: 'unreachable', ap: 'ok' },
    })
    expect((await scope.stub('ap').snapshot()).views.ap!.datacenters.lon!.drained).toBe(true)
    expect((await scope.stub('us').snapshot()).views.us!.datacenters.lon!.drained).toBe(false)

    const nowhere = vantageScope('vantages-admin-cut/', () => cut)
    const refused = await request(nowhere, london, '/admin/datacenters/lon/drain', 'POST')
    expect(refused.status).toBe(503)
    expect(await errorOf(refused)).toEqual({
      code: 'health_unavailable',
      message: 'no health vantage took the drain of lon',
    })
  })
})

describe('the vantage set', () => {
  const sites = world.map((dc) => ({
    ...dc,
    endpoints: { web: 'http://127.0.0.1:9', natsWs: 'ws://127.0.0.1:9' },
  }))

  it('has one vantage per region, at its first datacenter, with that datacenter hint', () => {
    expect(vantagesOf(sites).map((v) => [v.id, v.site.id, v.hint])).toEqual([
      ['eu', 'fra', 'weur'],
      ['us', 'nyc', 'enam'],
      ['ap', 'sgp', 'apac'],
    ])
    expect(vantagesOf(catalogue).map((v) => [v.id, v.site.id, v.hint])).toEqual([
      ['eu', 'fra', 'weur'],
      ['us', 'nyc', 'enam'],
      ['ap', 'syd', 'oc'],
    ])
  })

  it.each([
    // Local sites: the vantage standing nearest.
    ['sfo', 'wnam', 'us'],
    ['lon', 'weur', 'eu'],
    // Colos: the vantage of the same hint, else the one nearest to the hint's point.
    ['IAD', 'enam', 'us'],
    ['SIN', 'apac', 'ap'],
    ['SYD', 'oc', 'ap'],
    ['DXB', 'me', 'eu'],
    ['GRU', 'sam', 'us'],
  ])('serves a request entering at %s (%s) from %s', (id, hint, vantage) => {
    const config = { datacenters: sites, edgeSites: sites }
    expect(nearestVantage(config, { id, hint: hint as 'weur' }).id).toBe(vantage)
  })

  it('asks for each vantage by its name with its region hint, from the request path too', async () => {
    const asked: Array<[string, unknown]> = []
    const recording = {
      HEALTH: {
        getByName: (name: string, options?: DurableObjectNamespaceGetDurableObjectOptions) => {
          asked.push([name, options])
          return env.HEALTH.getByName(name, options)
        },
      } as unknown as Bindings['HEALTH'],
    }
    vantageStub(recording, vantagesOf(sites)[2]!)
    expect(asked).toEqual([['vantage:ap', { locationHint: 'apac' }]])
    asked.length = 0
    const res = await request(recording, '-33.87,151.21', '/status.json')
    expect(res.status).toBe(200)
    expect(asked).toContainEqual(['vantage:ap', { locationHint: 'oc' }])
    expect(asked.every(([name]) => name === 'vantage:ap')).toBe(true)
  })
})

describe('GET /status.json, from the viewer vantage', () => {
  interface Doc {
    viewer: { steeredTo: string; vantage: string | null }
    datacenters: Array<{
      id: string
      state: string
      votes: { up: number; down: number; abstain: number } | null
      views: Record<string, { state: string; lastProbe: { ok: boolean } | null } | null>
    }>
    vantages: Array<{ id: string; site: string; hint: string; at: number | null; fresh: boolean }>
  }
  const status = async (scope: VantageScope, geo: string) =>
    (await request(scope, geo, '/status.json')).json<Doc>()

  it('shows each datacenter votes and every vantage view of it, and each vantage', async () => {
    const scope = await ready('vantages-status/')
    await scope.stub('us').report('fra', 'HTTP 502')
    await scope.stub('us').report('fra', 'connection refused')
    const doc = await status(scope, newYork)
    expect(doc.viewer.vantage).toBe('us')
    const byId = new Map(doc.datacenters.map((dc) => [dc.id, dc]))
    expect(byId.get('fra')).toMatchObject({
      state: 'healthy',
      votes: { up: 2, down: 1, abstain: 0 },
      views: {
        eu: { state: 'healthy', lastProbe: { ok: true } },
        us: { state: 'down', lastProbe: { ok: true } },
        ap: { state: 'healthy', lastProbe: { ok: true } },
      },
    })
    expect(byId.get('nyc')).toMatchObject({ state: 'down', votes: { up: 0, down: 3, abstain: 0 } })
    // New York's vantage sees fra down: the viewer is steered past it (nyc is down, lon next).
    expect(doc.viewer.steeredTo).toBe('lon')
    expect(doc.vantages.map(({ id, site, hint, fresh }) => ({ id, site, hint, fresh }))).toEqual([
      { id: 'eu', site: 'fra', hint: 'weur', fresh: true },
      { id: 'us', site: 'nyc', hint: 'enam', fresh: true },
      { id: 'ap', site: 'syd', hint: 'oc', fresh: true },
    ])
    for (const vantage of doc.vantages) expect(vantage.at).toBeTypeOf('number')
  })

  it('says when a vantage has not been heard, or has never probed', async () => {
    const scope = vantageScope('vantages-status-new/')
    const doc = await status(scope, london)
    expect(doc.viewer.vantage).toBe('eu')
    expect(doc.vantages.map(({ id, at, fresh }) => ({ id, at, fresh }))).toEqual([
      { id: 'eu', at: null, fresh: false },
      { id: 'us', at: null, fresh: false },
      { id: 'ap', at: null, fresh: false },
    ])
    const fra = doc.datacenters.find((dc) => dc.id === 'fra')!
    expect(fra).toMatchObject({ state: 'healthy', votes: { up: 0, down: 0, abstain: 3 } })
    expect(fra.views).toEqual({ eu: { state: 'healthy', lastProbe: null }, us: null, ap: null })
  })
})
