/**
 * NATS across continents as its maintainers recommend (issue #15, point 3): six real nats-servers (Debian's
 * 2.9.10) on the world catalogue, configured as `npm start` configures them, form one cluster per region
 * (eu: fra, ams, lon; us: nyc, sfo; ap: sgp) joined by gateways. JetStream's meta group is the five servers
 * the catalogue says run JetStream, its leader kept in eu; a stream placed by region lands there; a KV
 * mirror placed in ap answers reads in sgp, also with Europe gone. And the lab notices a dead gateway
 * within seconds. The same configuration as `npm start` writes it for 127.0.n.1 is checked too, and a
 * catalogue that breaks the quorum never starts a server.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import { nkeyAuthenticator, type NatsConnection } from '@nats-io/nats-core'
import { jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { parseCatalogue, type Catalogue } from '#shared/catalogue.ts'
import { homeRegion } from '#shared/regions.ts'
import { datacenterSpecs, projectRoot } from '../../local/platform-specs.ts'
import { derivedVariables } from '../../backend/runtime/catalogue-variables.ts'
import { localEnv } from '../../local/env.ts'
import { loadEdgeSecrets } from '../../local/edge-secrets.ts'
import { keepMetaLeaderHome, metaLeader } from '../../local/nats-meta-leader.ts'
import { natsAuth, testNatsCredentials } from '../support/nats-credentials.ts'
import {
  gatewayz,
  jsz,
  outboundRegions,
  routedServers,
  startNatsWorld,
  varz,
  type TestNatsWorld,
} from '../support/nats-world.ts'

const readCatalogue = (file: string): Catalogue =>
  parseCatalogue(JSON.parse(readFileSync(join(projectRoot, file), 'utf8')), file)
const world = readCatalogue('shared/datacenters.world.json')
const europe = homeRegion(world).datacenters.map((dc) => dc.id)

/** Placement by region tag; nats.js's type wants a cluster too, and an empty one means any. */
const inRegion = (region: string) => ({ cluster: '', tags: [`region:${region}`] })

/** Polls `check` until it holds; resolves with the milliseconds it took. */
async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - started
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`)
    await sleep(50)
  }
}

describe('six servers on the world catalogue', () => {
  let nats: TestNatsWorld
  const connections: NatsConnection[] = []
  const app = async (dc: string) => {
    const nc = await connect({ servers: nats.server(dc).url, ...natsAuth() })
    connections.push(nc)
    return nc
  }
  const system = async (dc: string) => {
    const nc = await connect({
      servers: nats.server(dc).url,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(testNatsCredentials().seed('system'))),
    })
    connections.push(nc)
    return nc
  }

  beforeAll(async () => {
    nats = await startNatsWorld(world, 'world')
    console.log(`nats world: the super-cluster formed ${nats.formedMs} ms after the six servers were spawned`)
  }, 90_000)
  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close()))
    await nats?.dispose()
  })

  it('forms one cluster per region, joined by gateways, every server tagged by datacenter and region', async () => {
    for (const s of nats.servers) {
      const others = ['ap', 'eu', 'us'].filter((r) => r !== s.region)
      const g = await gatewayz(s)
      expect(g.name, s.dc).toBe(s.region)
      expect(await outboundRegions(s), s.dc).toEqual(others)
      // Routes stay inside the region: sgp, alone in ap, routes to nobody.
      const peers = nats.servers.filter((o) => o.region === s.region && o !== s).map((o) => o.dc)
      expect(await routedServers(s, nats.servers), s.dc).toEqual(peers.sort())
      expect((await varz(s)).tags, s.dc).toEqual([`dc:${s.dc}`, `region:${s.region}`])
    }
    // Every region's gateways were dialled by someone: each region receives from both others.
    for (const region of ['eu', 'us', 'ap']) {
      const inbound = new Set<string>()
      for (const s of nats.servers.filter((o) => o.region === region))
        for (const r of Object.keys((await gatewayz(s)).inbound_gateways ?? {})) inbound.add(r)
      expect([...inbound].sort(), region).toEqual(['ap', 'eu', 'us'].filter((r) => r !== region))
    }
  })

  it('runs JetStream on five servers, sfo not voting, with the meta leader kept in eu', async () => {
    expect((await jsz(nats.server('sfo'))).disabled).toBe(true)
    for (const s of nats.servers.filter((o) => o.jetstream))
      expect((await jsz(s)).meta_cluster?.cluster_size, s.dc).toBe(5)
    const sys = await system('sgp')
    const placement = await keepMetaLeaderHome(sys, (server) => europe.includes(server))
    console.log(
      `nats world: meta leader after the election ${placement.leaders[0]}, ${placement.stepDowns} step-down(s) to ${placement.leader}`
    )
    expect(europe).toContain(placement.leader)
    // Every JetStream server agrees.
    for (const s of nats.servers.filter((o) => o.jetstream))
      await within(
        5_000,
        `${s.dc} sees the eu leader`,
        async () => (await jsz(s)).meta_cluster?.leader === placement.leader
      )
    // The election alone leaves it outside eu two times in five (nats-server 2.9.10 picks no side):
    // send it across the ocean and bring it back, so that the step-downs are exercised every run.
    const away = await keepMetaLeaderHome(sys, (server) => !europe.includes(server))
    expect(away.stepDowns).toBeGreaterThan(0)
    expect(['nyc', 'sgp']).toContain(away.leader)
    const back = await keepMetaLeaderHome(sys, (server) => europe.includes(server))
    expect(back.stepDowns).toBeGreaterThan(0)
    expect(europe).toContain(back.leader)
    await within(5_000, 'the servers agree', async () => (await metaLeader(sys)) === back.leader)
  })

  it('places an R3 stream created from us on fra, ams and lon by its region tag', async () => {
    const jsm = await jetstreamManager(await app('nyc'))
    await jsm.streams.add({
      name: 'PLACED',
      subjects: ['placed.>'],
      num_replicas: 3,
      placement: inRegion('eu'),
    })
    const info = await jsm.streams.info('PLACED')
    expect(info.cluster?.name).toBe('eu')
    const replicas = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)]
    expect(replicas.sort()).toEqual([...europe].sort())
  })

  it('refuses an R3 stream placed in us, which has one JetStream server', async () => {
    const jsm = await jetstreamManager(await app('nyc'))
    await expect(
      jsm.streams.add({
        name: 'TOO_FEW',
        subjects: ['few.>'],
        num_replicas: 3,
        placement: inRegion('us'),
      })
    ).rejects.toThrow(/insufficient resources|no suitable peers/i)
  })

  describe('a registry KV in eu with a read mirror in ap', () => {
    let sgp: NatsConnection
    beforeAll(async () => {
      const kvm = new Kvm(await app('fra'))
      const origin = await kvm.create('registry', { replicas: 3, placement: inRegion('eu') })
      await origin.put('modules.dice', 'v1')
      // nats.js makes a KV mirror with mirror_direct: its server answers the origin's direct gets.
      await kvm.create('registry-ap', { mirror: { name: 'registry' }, placement: inRegion('ap') })
      sgp = await app('sgp')
      const jsm = await jetstreamManager(sgp)
      await within(
        10_000,
        'the mirror catches up',
        async () => (await jsm.streams.info('KV_registry-ap')).state.messages === 1
      )
    }, 30_000)

    /**
     * A direct get as the registry's readers make it (nats.js KV opened with allow_direct, as
     * backend/registry/buckets.ts does): last by subject, the subject in the request's subject. The
     * reply's Nats-Stream header names the stream that answered.
     */
    const directGet = async (key: string) => {
      const reply = await sgp.request(`$JS.API.DIRECT.GET.KV_registry.$KV.registry.${key}`, '', {
        timeout: 2_000,
      })
      return { stream: reply.headers?.get('Nats-Stream'), value: reply.string() }
    }
    const reader = () => new Kvm(sgp).open('registry', { allow_direct: true })

    it('lands the mirror on sgp and the origin on fra, ams and lon', async () => {
      const jsm = await jetstreamManager(sgp)
      const mirror = await jsm.streams.info('KV_registry-ap')
      expect(mirror.cluster?.name).toBe('ap')
      expect(mirror.cluster?.leader).toBe('sgp')
      expect(mirror.config.mirror_direct).toBe(true)
      const origin = await jsm.streams.info('KV_registry')
      expect([origin.cluster?.leader, ...(origin.cluster?.replicas ?? []).map((r) => r.name)].sort()).toEqual(
        [...europe].sort()
      )
    })

    it("answers a direct get from sgp's connection in sgp", async () => {
      // The reply names the stream that answered: the mirror, not the origin across the ocean.
      for (let i = 0; i < 20; i++)
        expect(await directGet('modules.dice')).toEqual({ stream: 'KV_registry-ap', value: 'v1' })
      expect((await (await reader()).get('modules.dice'))?.string()).toBe('v1')
    })

    it('notices a hung sgp within seconds, and takes it back when it wakes', async () => {
      // SIGSTOP: the process keeps its sockets but answers nothing, like a link the WAN relay cuts.
      const sgpServer = nats.server('sgp')
      const fra = nats.server('fra')
      const before = Object.keys((await gatewayz(fra)).outbound_gateways ?? {})
      expect(before).toContain('ap')
      sgpServer.proc.child.kill('SIGSTOP')
      let noticed: number
      try {
        noticed = await within(
          15_000,
          'fra drops its gateway to ap',
          async () => !(await outboundRegions(fra)).includes('ap')
        )
      } finally {
        sgpServer.proc.child.kill('SIGCONT')
      }
      const back = await within(30_000, 'fra gateways to ap again', async () =>
        (await outboundRegions(fra)).includes('ap')
      )
      console.log(`nats world: a hung gateway noticed after ${noticed} ms, back ${back} ms after it woke`)
      // ping_interval 2 s, ping_max 2: three unanswered pings.
      expect(noticed).toBeLessThan(10_000)
    })

    it('keeps answering in sgp with Europe gone', async () => {
      const kv = await reader()
      await Promise.all(europe.map((dc) => nats.server(dc).kill()))
      // Past the mirror's stall (3 s without its origin's heartbeats): nats-server 2.9.10 then drops the
      // mirror's subscription to the origin's plain `$JS.API.DIRECT.GET.KV_registry` (a JSON body
      // request goes unanswered until the next write reaches the mirror), but keeps the one to the
      // last-by-subject form that nats.js's KV get uses.
      const deadline = Date.now() + 5_000
      while (Date.now() < deadline) {
        expect(await directGet('modules.dice')).toEqual({ stream: 'KV_registry-ap', value: 'v1' })
        expect((await kv.get('modules.dice'))?.string()).toBe('v1')
        await sleep(250)
      }
    })
  })
})

describe('the configuration npm start writes for the world', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vtta-world-specs-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const env = () => localEnv({}, 'http://127.0.0.1:8787', loadEdgeSecrets(join(dir, 'edge')).secrets).values
  const confOf = (localDir: string, dc: string) => ({
    nats: readFileSync(join(localDir, 'nats', dc, 'nats.conf'), 'utf8'),
    auth: readFileSync(join(localDir, 'nats', dc, 'auth.conf'), 'utf8'),
  })
  const hosts = (auth: string, variable: string) =>
    [
      ...(new RegExp(`^${variable}: (.*)$`, 'm').exec(auth)?.[1] ?? '').matchAll(/@(127\.0\.\d+\.1):(\d+)/g),
    ].map((m) => `${m[1]}:${m[2]}`)

  it('routes within the region and gateways to every region on 127.0.n.1', () => {
    const localDir = join(dir, 'world')
    datacenterSpecs(world, localDir, env())
    const nyc = confOf(localDir, 'nyc')
    expect(nyc.nats).toMatch(/^cluster \{\n {2}name: us\n/m)
    expect(nyc.nats).toMatch(/^gateway \{\n {2}name: us\n {2}listen: "127\.0\.4\.1:7222"/m)
    expect(nyc.nats).toContain('server_tags: ["dc:nyc","region:us"]')
    expect(hosts(nyc.auth, 'ROUTES')).toEqual(['127.0.4.1:6222', '127.0.5.1:6222'])
    expect([...nyc.auth.matchAll(/"name":"([a-z]+)"/g)].map((m) => m[1])).toEqual(['eu', 'us', 'ap'])
    expect(hosts(nyc.auth, 'GATEWAYS')).toEqual(
      ['127.0.1.1', '127.0.2.1', '127.0.3.1', '127.0.4.1', '127.0.5.1', '127.0.6.1'].map((h) => `${h}:7222`)
    )
    // sgp, alone in ap, routes to itself: nats-server 2.9.10 starts no JetStream in a super-cluster without routes.
    expect(hosts(confOf(localDir, 'sgp').auth, 'ROUTES')).toEqual(['127.0.6.1:6222'])
    // sfo runs no JetStream at all.
    expect(confOf(localDir, 'sfo').nats).not.toMatch(/^jetstream \{/m)
    expect(confOf(localDir, 'fra').nats).toMatch(/^jetstream \{/m)
    for (const dc of world) {
      const test = spawnSync('nats-server', ['-t', '-c', join(localDir, 'nats', dc.id, 'nats.conf')], {
        encoding: 'utf8',
      })
      expect(test.status, `${dc.id}: ${test.stderr}`).toBe(0)
    }
  })

  it('runs the release consumers in the home region only, every other service everywhere', () => {
    const specs = datacenterSpecs(world, join(dir, 'services'), env())
    const running = Object.fromEntries(specs.map((d) => [d.dc, d.services.map((s) => s.service).sort()]))
    const all = ['images', 'notifier', 'releases', 'web']
    expect(running).toEqual({
      fra: all,
      ams: all,
      lon: all,
      nyc: ['images', 'web'],
      sfo: ['images', 'web'],
      sgp: ['images', 'web'],
    })
    // One region: every datacenter runs every service, as before regions existed.
    const single = datacenterSpecs(readCatalogue('shared/datacenters.json'), join(dir, 'services-eu'), env())
    for (const d of single) expect(d.services.map((s) => s.service).sort()).toEqual(all)
  })

  it("hands web its region's registry mirror as production's catalogue does, releases every mirror", () => {
    const specs = datacenterSpecs(world, join(dir, 'mirrors'), env())
    const envOf = (dc: string, service: string) =>
      specs.find((d) => d.dc === dc)!.services.find((s) => s.service === service)?.env ?? {}
    for (const { dc } of specs) {
      // What a production task of this datacenter takes from the catalogue (DATACENTERS_FILE).
      const derived = derivedVariables(world, dc)!
      for (const name of ['REGION', 'JETSTREAM_HOME_REGION', 'REGISTRY_MIRROR_REGIONS'])
        expect(envOf(dc, 'web')[name], `${dc} web ${name}`).toBe(derived[name])
    }
    // So web in nyc and sgp reads its region's mirror; releases (in eu only) makes them all.
    expect(envOf('nyc', 'web').REGISTRY_MIRROR_REGIONS).toBe('us,ap')
    for (const dc of europe) expect(envOf(dc, 'releases').REGISTRY_MIRROR_REGIONS).toBe('us,ap')
    // One region: no mirror to read or make.
    const single = datacenterSpecs(readCatalogue('shared/datacenters.json'), join(dir, 'mirrors-eu'), env())
    for (const d of single)
      for (const s of d.services)
        expect(s.env.REGISTRY_MIRROR_REGIONS, `${d.dc} ${s.service}`).toBeUndefined()
  })

  it('keeps the three-datacenter default one cluster without gateways', () => {
    const localDir = join(dir, 'default')
    datacenterSpecs(readCatalogue('shared/datacenters.json'), localDir, env())
    const fra = confOf(localDir, 'fra')
    expect(fra.nats).toMatch(/^cluster \{\n {2}name: vtta-local\n/m)
    expect(fra.nats).not.toMatch(/gateway/)
    expect(fra.auth).not.toMatch(/^GATEWAY/m)
    expect(hosts(fra.auth, 'ROUTES')).toEqual(['127.0.1.1:6222', '127.0.2.1:6222', '127.0.3.1:6222'])
    // Tagged by region all the same, so that placement by `region:eu` works on the default too.
    expect(fra.nats).toContain('server_tags: ["dc:fra","region:eu"]')
    for (const dc of ['fra', 'ams', 'lon']) {
      const test = spawnSync('nats-server', ['-t', '-c', join(localDir, 'nats', dc, 'nats.conf')], {
        encoding: 'utf8',
      })
      expect(test.status, `${dc}: ${test.stderr}`).toBe(0)
    }
  })

  it('refuses a catalogue that breaks the quorum before starting anything', () => {
    // sfo votes too: eu holds 3 of 6 JetStream servers, no strict majority.
    const broken = world.map((dc) => (dc.id === 'sfo' ? { ...dc, jetstream: true } : dc))
    const file = join(dir, 'broken.json')
    writeFileSync(file, JSON.stringify(broken))
    const localDir = join(dir, 'broken-local')
    const start = spawnSync(process.execPath, [join(projectRoot, 'local', 'start.ts')], {
      env: { ...process.env, DATACENTERS_FILE: file, LOCAL_DIR: localDir, EDGE_PORT: '1' },
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(start.status).toBe(1)
    expect(start.stderr).toMatch(
      /invalid datacenter catalogue: .*no region holds a strict majority of the 6 JetStream servers \(eu 3, us 2, ap 1\)/
    )
    // Nothing was started or written: not even the local directory.
    expect(existsSync(localDir)).toBe(false)
  })
})
