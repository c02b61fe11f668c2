/**
 * `npm run test:world`: the six-datacenter world (shared/datacenters.world.json) with the WAN on, as
 * `DATACENTERS_FILE=shared/datacenters.world.json WAN=1 npm start` runs it, and issue #15's proofs that
 * need it: the super-cluster as its maintainers recommend, image transforms inside the client's region,
 * registry reads answered by the nearest mirror, and Europe keeping the JetStream quorum while an ocean
 * is cut. Every part is real: nats-servers, services, the edge in workerd, the user-space WAN relay.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import sharp from 'sharp'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import { freePort } from '../../local/free-port.ts'
import { readState, type StateFile } from '../../local/state.ts'
import { localEnv } from '../../local/env.ts'
import { loadEdgeSecrets } from '../../local/edge-secrets.ts'
import { connectOperatorNats } from '../../local/operator-nats.ts'
import { datacenterAddresses } from '../../local/addresses.ts'
import { openRegistryStorage, ensureRegistryStorage } from '../../backend/registry/buckets.ts'
import { RegistryWriter } from '../../backend/registry/writer.ts'
import { kvStreamName, registryBuckets, registryMirrorBucket } from '#shared/releases.ts'
import world from '#shared/datacenters.world.json' with { type: 'json' }
import { startSupervisor, swarm, type Supervisor } from '../support/supervisor.ts'
import { startOriginServer, type OriginServer } from '../support/origin-server.ts'
import { datacenterState, waitUntil } from '../e2e/context.ts'
import { packagedEntry } from '../support/packaged-entry.ts'
import { deliverThroughFaults } from './release-durability.ts'

const localDir = mkdtempSync(join(tmpdir(), 'vtta-world-'))
let supervisor: Supervisor
let origin: OriginServer
let edge: string
let state: StateFile
/** The operator's connection to fra (Europe, the home region). */
let operator: NatsConnection

const index = (dc: string) => world.findIndex((d) => d.id === dc)
const near = {
  newYork: { 'x-client-geo': '40.71,-74.01' },
  singapore: { 'x-client-geo': '1.35,103.82' },
  /** Enters the edge at dxb (local/wan/edge-locations.json): 119 ms to fra, 80 ms to sgp. */
  dubai: { 'x-client-geo': '25.2,55.27' },
}

/** What the world tests read of /status.json. */
interface StatusJson {
  datacenters: Array<{
    id: string
    state: string
    votes: { up: number; down: number; abstain: number }
    views: Record<string, { state: string } | null>
  }>
}
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN
}
const figures: string[] = []
/** `sfo 40, lon 12`: how many of `misses` each datacenter answered. */
const tally = (misses: ReadonlyArray<{ dc: string | null }>) =>
  [...misses.reduce((m, { dc }) => m.set(dc ?? '?', (m.get(dc ?? '?') ?? 0) + 1), new Map<string, number>())]
    .map(([dc, n]) => `${dc} ${n}`)
    .join(', ')

/** images_transforms_total of one datacenter's image service, from its internal /metrics. */
async function transforms(dc: string): Promise<number> {
  const text = await (await fetch(`${datacenterAddresses(index(dc)).internalUrl('images')}/metrics`)).text()
  return text
    .split('\n')
    .filter((l) => l.startsWith('images_transforms_total{'))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0)
}

let uniq = 0
/** An image miss (a source URL never asked before) from near `client`; its status and the time it took. */
async function imageMiss(client: Record<string, string>): Promise<{
  status: number
  ms: number
  dc: string | null
  failoverFrom: string | null
  steering: string | null
}> {
  const started = performance.now()
  const res = await fetch(`${edge}/img/width=64,format=webp/${origin.fileUrl('photo.jpg', `u=${++uniq}`)}`, {
    headers: client,
    signal: AbortSignal.timeout(20_000),
  })
  await res.arrayBuffer()
  return {
    status: res.status,
    ms: performance.now() - started,
    dc: res.headers.get('x-datacenter'),
    failoverFrom: res.headers.get('x-failover-from'),
    steering: res.headers.get('x-steering'),
  }
}

/** GET /api/modules/<id> from sgp's own web service (with the edge's proof), its status. */
async function readInSingapore(id: string): Promise<number> {
  const { secrets } = loadEdgeSecrets(localDir)
  const res = await fetch(`${datacenterAddresses(index('sgp')).serviceUrl('web')}/api/modules/${id}`, {
    headers: {
      'cf-access-client-id': secrets.ORIGIN_CLIENT_ID,
      'cf-access-client-secret': secrets.ORIGIN_CLIENT_SECRET,
    },
    signal: AbortSignal.timeout(5_000),
  }).catch(() => null)
  if (!res) return 0
  await res.arrayBuffer()
  return res.status
}

/** The address datacenter `dc`'s server dialled for its outbound gateway to `region` (/gatewayz). */
async function outboundGatewayIp(dc: string, region: string): Promise<string | undefined> {
  const doc = (await (await fetch(`${datacenterAddresses(index(dc)).natsMonitorUrl}/gatewayz`)).json()) as {
    outbound_gateways?: Record<string, { connection?: { ip?: string } }>
  }
  return doc.outbound_gateways?.[region]?.connection?.ip
}

let writer: RegistryWriter
let written = 0
/** Commits one new module version in Europe (as the release service does); its id. */
async function writeInEurope(): Promise<string> {
  const id = `world-${++written}`
  const version = '1.0.0'
  const result = await writer.commitVersion({
    moduleId: id,
    title: `World ${written}`,
    repository: 'vtta/world',
    entry: packagedEntry({
      id,
      version,
      repository: 'vtta/world',
      repositoryId: 9100,
      releaseId: written,
      baseUrl: 'https://vtta.io',
    }),
  })
  if (result.outcome !== 'committed') throw new Error(`writing ${id}: ${result.outcome}`)
  return id
}

/** Milliseconds from now until `read` answers 200, polled every 10 ms, or Infinity after `timeoutMs`. */
async function msUntilVisible(id: string, timeoutMs: number): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < timeoutMs) {
    if ((await readInSingapore(id)) === 200) return performance.now() - started
    await sleep(10)
  }
  return Infinity
}

beforeAll(async () => {
  const photo = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#0ea5e9' } })
    .jpeg()
    .toBuffer()
  origin = await startOriginServer({ 'photo.jpg': { body: photo, contentType: 'image/jpeg' } })
  const port = await freePort()
  edge = `http://127.0.0.1:${port}`
  supervisor = startSupervisor({
    LOCAL_DIR: localDir,
    DATACENTERS_FILE: join('shared', 'datacenters.world.json'),
    WAN: '1',
    EDGE_PORT: String(port),
    PROBE_INTERVAL_MS: '1000',
    PROBE_TIMEOUT_MS: '1500',
    DOWN_AFTER: '2',
    UP_AFTER: '3',
    HEALTH_MEMO_MS: '1000',
    IMAGE_SOURCE_HOSTS: `${localEnv({}, '').values.IMAGE_SOURCE_HOSTS},${origin.origin}`,
  })
  if (!(await supervisor.ready)) throw new Error(`the world did not start:\n${supervisor.output()}`)
  state = readState(localDir)
  operator = await connectOperatorNats(state, localDir)
  writer = new RegistryWriter(
    (await openRegistryStorage(operator)) ?? (await ensureRegistryStorage(operator, 3))
  )
}, 300_000)

afterAll(async () => {
  console.log(`world figures:\n  ${figures.join('\n  ')}`)
  await operator?.close()
  if (supervisor && supervisor.child.exitCode === null) {
    supervisor.child.kill('SIGINT')
    await supervisor.exited
  }
  await origin?.close()
}, 120_000)

describe('the super-cluster, as the NATS maintainers recommend across oceans', () => {
  it('places the release streams and the registry R3 in Europe, and a registry mirror in us and ap', async () => {
    const jsm = await jetstreamManager(operator)
    for (const stream of ['GITHUB', 'RELEASES', kvStreamName(registryBuckets.kv)]) {
      const info = await jsm.streams.info(stream)
      const servers = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)].sort()
      expect(info.cluster?.name, stream).toBe('eu')
      expect(servers, stream).toEqual(['ams', 'fra', 'lon'])
    }
    for (const [region, dc] of [
      ['us', 'nyc'],
      ['ap', 'sgp'],
    ] as const) {
      const info = await jsm.streams.info(kvStreamName(registryMirrorBucket(region)))
      expect(info.config.mirror?.name).toBe(kvStreamName(registryBuckets.kv))
      expect(info.config.mirror_direct).toBe(true)
      expect(info.cluster?.leader).toBe(dc)
    }
  })
})

describe('image transforms stay in the client’s region', () => {
  it('transforms a us client’s misses in us: nyc, and sfo once nyc is lost', async () => {
    // The edge steers to nyc once its probes have seen nyc up (a fresh edge knows nothing yet).
    await waitUntil(
      () => datacenterState(edge, 'nyc'),
      (s) => s === 'healthy',
      60_000,
      'nyc healthy at the edge'
    )
    const before = await transforms('nyc')
    const up: number[] = []
    const servedBy: string[] = []
    for (let i = 0; i < 10; i++) {
      const miss = await imageMiss(near.newYork)
      expect(miss.status).toBe(200)
      servedBy.push(miss.dc ?? '?')
      up.push(miss.ms)
    }
    expect(servedBy).toEqual(Array<string>(10).fill('nyc'))
    expect((await transforms('nyc')) - before, 'every miss transformed by nyc’s own image service').toBe(10)
    figures.push(`us-east image miss, nyc up: p50 ${percentile(up, 50).toFixed(0)} ms`)

    // nyc's image service lost, its NATS server alive: the region's subject reaches sfo's.
    const images = readState(localDir).processes.find((p) => p.dc === 'nyc' && p.service === 'images')!
    process.kill(-images.pid, 'SIGKILL')
    const sfoFirst = await transforms('sfo')
    const inRegion: number[] = []
    for (let i = 0; i < 5; i++) {
      const miss = await imageMiss(near.newYork)
      expect(miss.status).toBe(200)
      inRegion.push(miss.ms)
    }
    expect((await transforms('sfo')) - sfoFirst, 'transformed by sfo, the other datacenter in us').toBe(5)
    figures.push(
      `us-east image miss, nyc's image service lost: p50 ${percentile(inRegion, 50).toFixed(0)} ms via the region (sfo)`
    )

    // nyc killed under a stream of New York requests (issue #16): none may fail. A request that meets the
    // dead nyc fails over to sfo at once; the health state only decides how soon nyc stops being tried.
    await swarm(localDir, 'revive', 'nyc')
    await waitUntil(
      () => datacenterState(edge, 'nyc'),
      (s) => s === 'healthy',
      60_000,
      'nyc healthy again after its image service was revived'
    )
    const sfoBefore = await transforms('sfo')
    const stream: Array<Awaited<ReturnType<typeof imageMiss>> & { startedAt: number; at: number }> = []
    let stop = false
    const lanes = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const startedAt = Date.now()
        const miss = await imageMiss(near.newYork)
        stream.push({ startedAt, at: Date.now(), ...miss })
      }
    })
    await sleep(2_000)
    await swarm(localDir, 'kill', 'nyc')
    // Marked once the command has returned: nyc's processes are gone by then.
    const killedAt = Date.now()
    // As a New York client's requests see it: through the vantage nearest to them (us).
    await waitUntil(
      () => datacenterState(edge, 'nyc', near.newYork),
      (s) => s === 'down',
      30_000,
      'nyc down at the edge'
    )
    const downAt = Date.now()
    await sleep(5_000)
    stop = true
    await Promise.all(lanes)
    const failed = stream.filter((m) => m.status !== 200)
    const firstSfo = stream.find((m) => m.dc === 'sfo')
    // Requests begun once the isolate's health memo has caught up (HEALTH_MEMO_MS) no longer try nyc.
    const settled = stream.filter((m) => m.startedAt > downAt + 1_000)
    const down = settled.map((m) => m.ms)
    figures.push(
      `us-east image misses, 4 at a time across nyc's kill: ${stream.length} requests, ${failed.length} failed; ` +
        `first answer from sfo ${firstSfo ? firstSfo.at - killedAt : '-'} ms after the kill command returned; the edge called nyc down ${downAt - killedAt} ms after it; ` +
        `then p50 ${percentile(down, 50).toFixed(0)} ms, served by ${tally(settled)}`
    )
    expect(failed, 'no request fails while nyc dies').toEqual([])
    // Within the probe window (PROBE_INTERVAL_MS x DOWN_AFTER + HEALTH_MEMO_MS), traffic is on sfo.
    expect(firstSfo, 'a New York request answered by sfo after the kill').toBeDefined()
    expect(firstSfo!.at - killedAt).toBeLessThanOrEqual(1_000 * 2 + 1_000)
    expect(settled.length).toBeGreaterThan(0)
    // Once nyc is down nothing tries it: New York goes straight to a datacenter that answers. Which one
    // is measured: sfo first (nearest), and while the estimates are cold, every other request explores
    // another nearby candidate (lon, ams: 80 and 86 ms from nyc against sfo's 73).
    expect(
      settled.filter((m) => m.failoverFrom !== null),
      'once nyc is down, New York no longer tries it'
    ).toEqual([])
    expect(settled.some((m) => m.dc === 'sfo')).toBe(true)
    expect((await transforms('sfo')) - sfoBefore).toBeGreaterThanOrEqual(
      settled.filter((m) => m.dc === 'sfo').length
    )
    await swarm(localDir, 'revive', 'nyc')
  })
})

describe('steering at world scale (issue #16)', () => {
  it('steers a client in Dubai to sgp on measured latency, where distance picks fra', async () => {
    for (const dc of ['fra', 'sgp'])
      await waitUntil(
        () => datacenterState(edge, dc),
        (s) => s === 'healthy',
        60_000,
        `${dc} healthy at the edge`
      )
    // Warm-up: at most 50 misses, whatever they are steered to.
    for (let i = 0; i < 50; i++) expect((await imageMiss(near.dubai)).status).toBe(200)
    const measured: Array<Awaited<ReturnType<typeof imageMiss>>> = []
    const distance: Array<Awaited<ReturnType<typeof imageMiss>>> = []
    // Interleaved, so both modes see the same moment of the platform.
    for (let i = 0; i < 100; i++) {
      measured.push(await imageMiss(near.dubai))
      distance.push(await imageMiss({ ...near.dubai, 'x-steering-mode': 'distance' }))
    }
    const share = (misses: typeof measured, dc: string) =>
      misses.filter((m) => m.dc === dc).length / misses.length
    const p50 = (misses: typeof measured) =>
      percentile(
        misses.map((m) => m.ms),
        50
      )
    figures.push(
      `Dubai (dxb: fra 119 ms, sgp 80 ms), after 50 warm-up misses: measured steering sgp ${(share(measured, 'sgp') * 100).toFixed(0)} %, p50 ${p50(measured).toFixed(0)} ms; ` +
        `distance steering fra ${(share(distance, 'fra') * 100).toFixed(0)} %, p50 ${p50(distance).toFixed(0)} ms; better by ${(p50(distance) - p50(measured)).toFixed(0)} ms`
    )
    expect([...measured, ...distance].every((m) => m.status === 200)).toBe(true)
    expect(share(measured, 'sgp')).toBeGreaterThanOrEqual(0.95)
    expect(share(distance, 'fra')).toBe(1)
    expect(p50(distance) - p50(measured)).toBeGreaterThanOrEqual(35)
  })

  it('keeps a datacenter cut off from one region for the others, and takes it out when a majority cannot reach it', async () => {
    // Whatever an earlier test left behind: nyc running.
    await swarm(localDir, 'revive', 'nyc')
    await waitUntil(
      () => datacenterState(edge, 'nyc'),
      (s) => s === 'healthy',
      60_000,
      'nyc healthy at the edge'
    )
    const nycSeen = async () => {
      const doc = (await (await fetch(`${edge}/status.json`, { headers: near.newYork })).json()) as StatusJson
      return doc.datacenters.find((d) => d.id === 'nyc')!
    }
    try {
      await swarm(localDir, 'partition', 'nyc', 'from', 'eu')
      // Europe's vantage (at fra) sees nyc down; us and ap still reach it.
      await waitUntil(nycSeen, (dc) => dc.views.eu?.state === 'down', 30_000, "eu's view of nyc down")
      const oneCut = await nycSeen()
      // Up (healthy, or degraded: nyc's own NATS has lost Europe too, and its health document says so).
      const up = ['healthy', 'degraded']
      expect(up).toContain(oneCut.views.us?.state)
      expect(up).toContain(oneCut.views.ap?.state)
      expect(up).toContain(oneCut.state)
      expect(oneCut.votes).toMatchObject({ up: 2, down: 1 })
      for (let i = 0; i < 10; i++) {
        const miss = await imageMiss(near.newYork)
        expect(miss.status).toBe(200)
        expect(miss.dc, 'New York still served by nyc').toBe('nyc')
      }
      await swarm(localDir, 'partition', 'nyc', 'from', 'ap')
      await waitUntil(nycSeen, (dc) => dc.state === 'down', 30_000, 'nyc down by majority')
      const twoCut = await nycSeen()
      expect(twoCut.votes).toMatchObject({ down: 2, up: 1 })
      // The memo of the isolate refreshes within HEALTH_MEMO_MS.
      await sleep(1_500)
      for (let i = 0; i < 10; i++) {
        const miss = await imageMiss(near.newYork)
        expect(miss.status).toBe(200)
        // Elsewhere than nyc, and without trying it first: sfo, or a nearby candidate being explored.
        expect(miss.dc, 'New York served elsewhere once a majority sees nyc down').not.toBe('nyc')
        expect(miss.failoverFrom).toBeNull()
      }
      figures.push(
        'nyc cut from eu: views eu down, us and ap up, verdict up, New York on nyc; cut from ap too: verdict down (2 of 3), New York served elsewhere without trying nyc'
      )
    } finally {
      await swarm(localDir, 'heal')
    }
  })
})

describe('registry reads where the users are', () => {
  it('sees every write made in Europe from Singapore, read from its own mirror', async () => {
    const lags: number[] = []
    for (let i = 0; i < 50; i++) lags.push(await msUntilVisible(await writeInEurope(), 5_000))
    // The lag is a figure (issue goal: p99 <= 0.5 s; npm run bench measures it); what must hold is that
    // every write reaches Singapore's mirror.
    figures.push(
      `registry write in eu -> visible in sgp (50 writes): p50 ${percentile(lags, 50).toFixed(0)} ms, p99 ${percentile(lags, 99).toFixed(0)} ms (goal p99 <= 500)`
    )
    expect(lags.filter((ms) => ms === Infinity)).toEqual([])
  })

  it('keeps answering in Singapore with Europe cut off, and Europe keeps its quorum, consumers and writes', async () => {
    const known = await writeInEurope()
    expect(await msUntilVisible(known, 5_000)).toBeLessThan(5_000)
    await swarm(localDir, 'partition', 'eu')
    const cutAt = Date.now()
    try {
      // Let NATS notice the cut (the lab's ping interval) before judging.
      await sleep(15_000)
      const jsm = await jetstreamManager(operator)
      let creates = 0
      let reads = 0
      let usImages = 0
      let duringCut = ''
      while (Date.now() - cutAt < 120_000) {
        // A consumer create is a meta-group proposal: Europe must still hold the meta quorum.
        const consumer = await jsm.consumers.add('GITHUB', { inactive_threshold: 5_000_000_000 })
        await jsm.consumers.delete('GITHUB', consumer.name)
        creates++
        expect(await readInSingapore(known)).toBe(200)
        reads++
        expect((await imageMiss(near.newYork)).status).toBe(200)
        usImages++
        if (!duringCut) duringCut = await writeInEurope()
        await sleep(1_000)
      }
      figures.push(
        `Europe cut off 120 s: ${creates} consumer creates in eu, ${reads} reads in sgp, ${usImages} us image misses, all answered`
      )
      // The cut held: the write made in Europe meanwhile has not reached Singapore's mirror.
      expect(await readInSingapore(duringCut)).toBe(404)
      await swarm(localDir, 'heal')
      const caughtUp = await msUntilVisible(duringCut, 10_000)
      figures.push(`after the heal, sgp saw the write made during the cut in ${caughtUp.toFixed(0)} ms`)
      expect(caughtUp).toBeLessThanOrEqual(5_000)
      // Reconnected through a relay address of Europe's for sgp (fra's, ams's or lon's: the servers of a region
      // share their gateway URLs), never another region's pair (local/wan/relay.ts).
      expect(['127.0.6.2', '127.0.6.3', '127.0.6.4']).toContain(await outboundGatewayIp('fra', 'ap'))
    } finally {
      await swarm(localDir, 'heal')
    }
  })
})

describe('no release lost or announced twice across partitions', () => {
  it(
    '1,000 deliveries through eu and us, with the GITHUB leader’s datacenter partitioned 60 s, then us cut 60 s',
    { timeout: 1_200_000 },
    async () => {
      const f = await deliverThroughFaults(
        { edge, operator: () => operator, swarm: (...args) => swarm(localDir, ...args) },
        { total: 1_000, spanMs: 180_000, cutMs: 60_000 }
      )
      const once = [...f.announcements.values()].filter((n) => n === 1).length
      const twice = [...f.announcements.values()].filter((n) => n > 1).length
      const lost = [...f.announcements.entries()].filter(([, n]) => n === 0).map(([t]) => t)
      const retries = Object.entries(f.retried)
        .map(([status, n]) => `${n}× ${status}`)
        .join(', ')
      const waits = f.accepted
        .flatMap((a) => (a.publishedAt === undefined ? [] : [a.publishedAt - a.acceptedAt]))
        .sort((a, b) => a - b)
      const at = (q: number) =>
        ((waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] ?? NaN) / 1000).toFixed(1)
      figures.push(
        `accepted to served: p50 ${at(0.5)} s, p99 ${at(0.99)} s, max ${at(1)} s`,
        `1,000 deliveries (${f.accepted.filter((a) => a.via === 'eu').length} via eu, ${f.accepted.filter((a) => a.via === 'us').length} via us) in ${(f.ms / 1000).toFixed(0)} s, ${f.leader} (GITHUB's leader) partitioned 60 s then us cut 60 s: accepted ${f.accepted.length}, packaged ${f.accepted.length - f.unpackaged.length}, announced once ${once}, twice ${twice}, lost ${lost.length}; redeliveries ${retries || 'none'}; publishing resumed ${(f.resumedMs / 1000).toFixed(1)} s after the leader's partition (${f.probes} redelivery probes)`
      )
      expect(f.accepted).toHaveLength(1_000)
      expect(new Set(f.accepted.map((a) => a.title)).size).toBe(1_000)
      // Both faults happened while deliveries were still being sent.
      expect(Math.max(...f.accepted.map((a) => a.acceptedAt))).toBeGreaterThan(f.schedule.at(-1)!.at)
      expect(f.unpackaged).toEqual([])
      expect(lost).toEqual([])
      expect(twice).toBe(0)
      expect(once).toBe(1_000)
      expect(f.resumedMs).toBeLessThanOrEqual(10_000)
    }
  )
})
