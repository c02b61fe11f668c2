/**
 * NATS refuses everyone who is not one of ours, and each of ours may do only its job
 * (shared/nats-permissions.ts). Real nats-servers configured exactly as the local platform and
 * production configure theirs; every attack here worked on commit 2fcd4d4, where anyone had the
 * whole server.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import { errors, nkeyAuthenticator, wsconnect, type NatsConnection } from '@nats-io/nats-core'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { createUser } from '@nats-io/nkeys'
import { githubStreamConfig } from '#shared/releases.ts'
import { natsUserAuth, type NatsComponent, type NatsSystemComponent } from '#shared/nats-permissions.ts'
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts'
import { startNatsCluster, type TestNatsCluster } from '../support/nats-cluster.ts'
import { natsAuth, testNatsCredentials } from '../support/nats-credentials.ts'
import { startProcess, stopProcess } from '../../local/processes.ts'
import { freePort } from '../../local/free-port.ts'
import { waitForHttp } from '../../local/wait.ts'

let nats: TestNatsServer
let operator: NatsConnection

beforeAll(async () => {
  // A server of datacenter fra in region eu: its users' scoped subjects name fra (and eu); the release
  // service keeps registry mirrors in us and ap.
  nats = await startNatsServer('fra', { scope: 'fra', region: 'eu', mirrorRegions: ['us', 'ap'] })
  operator = await connect({ servers: nats.url, ...natsAuth() })
  const jsm = await jetstreamManager(operator)
  await jsm.streams.add(githubStreamConfig(1))
  await jsm.streams.add({ name: 'KV_registry', subjects: ['$KV.registry.>'] })
})
afterAll(async () => {
  await operator?.close()
  await nats?.dispose()
})

/** Connects as `component` and collects the permission violations the server reports. */
async function as(component: NatsComponent | NatsSystemComponent) {
  const nc = await connect({
    servers: nats.url,
    ...natsUserAuth(component, testNatsCredentials().seed(component)),
  })
  const violations: string[] = []
  void (async () => {
    for await (const s of nc.status())
      if (s.type === 'error' && s.error instanceof errors.PermissionViolationError)
        violations.push(`${s.error.operation} ${s.error.subject}${s.error.queue ? ` ${s.error.queue}` : ''}`)
  })()
  const settle = async () => {
    await nc.flush()
    await sleep(100)
  }
  return { nc, violations, settle }
}

/** Resolves with the error that closed the subscription, or 'open' if it is still open after a moment. */
const subscriptionFate = (nc: NatsConnection, subject: string, queue?: string) => {
  const sub = nc.subscribe(subject, queue ? { queue } : {})
  return Promise.race([
    sub.closed.then((e) => (e instanceof Error ? e.message : 'closed')),
    new Promise<string>((r) => setTimeout(() => r('open'), 500)),
  ])
}

describe('nobody gets in anonymously', () => {
  it('refuses a client without credentials on the client port', async () => {
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/Authorization Violation/)
  })

  it('refuses a WebSocket client without credentials (the listener the edge uses)', async () => {
    await expect(wsconnect({ servers: nats.wsUrl, reconnect: false })).rejects.toThrow(
      /Authorization Violation/
    )
  })

  it('refuses an nkey the server does not know', async () => {
    const stranger = nkeyAuthenticator(createUser().getSeed())
    await expect(connect({ servers: nats.url, authenticator: stranger, reconnect: false })).rejects.toThrow(
      /Authorization Violation/
    )
  })

  it('lets the edge in over WebSocket with its own key', async () => {
    const nc = await wsconnect({ servers: nats.wsUrl, reconnect: false, ...natsAuth('edge') })
    await expect(nc.request('ping.fra', '', { timeout: 1000 })).rejects.toThrow(/no responders/i)
    await nc.close()
  })
})

describe('the edge publishes requests and deliveries, and nothing else', () => {
  it('stores a GitHub delivery in the GITHUB stream and gets its acknowledgement', async () => {
    const { nc } = await as('edge')
    const ack = await jetstream(nc).publish('github.release.published', '{}', { msgID: 'edge-can-publish' })
    expect(ack.stream).toBe('GITHUB')
    await nc.close()
  })

  it('cannot list, delete or write streams, and cannot forge what the backend publishes', async () => {
    const { nc, violations, settle } = await as('edge')
    await expect(nc.request('$JS.API.STREAM.NAMES', '', { timeout: 1000 })).rejects.toThrow(
      /Permissions Violation/
    )
    await expect(nc.request('$JS.API.STREAM.DELETE.KV_registry', '', { timeout: 1000 })).rejects.toThrow(
      /Permissions Violation/
    )
    nc.publish('$KV.registry.manifest.item-piles', '{"download":"https://evil.example/x.zip"}')
    nc.publish('releases.packaged', '{}')
    await settle()
    expect(violations).toEqual(
      expect.arrayContaining([
        'publish $JS.API.STREAM.NAMES',
        'publish $JS.API.STREAM.DELETE.KV_registry',
        'publish $KV.registry.manifest.item-piles',
        'publish releases.packaged',
      ])
    )
    const jsm = await jetstreamManager(operator)
    expect((await jsm.streams.info('KV_registry')).state.messages).toBe(0)
    await nc.close()
  })

  it("cannot listen to everything, to other components' replies, or join the images queue group", async () => {
    const { nc } = await as('edge')
    expect(await subscriptionFate(nc, '>')).toMatch(/Permissions Violation for Subscription to ">"/)
    expect(await subscriptionFate(nc, '_INBOX_web.>')).toMatch(/Permissions Violation/)
    expect(await subscriptionFate(nc, 'images.fra.transform', 'images')).toMatch(/Permissions Violation/)
    expect(await subscriptionFate(nc, '_INBOX_edge.mine')).toBe('open')
    await nc.close()
  })
})

describe('each service reaches only its own subjects and streams', () => {
  it('images answers only its own datacenter, and only in its queue group', async () => {
    const { nc } = await as('images')
    expect(await subscriptionFate(nc, 'images.fra.transform', 'images')).toBe('open')
    expect(await subscriptionFate(nc, 'images.ams.transform', 'images')).toMatch(/Permissions Violation/)
    expect(await subscriptionFate(nc, 'images.fra.transform')).toMatch(/Permissions Violation/)
    await nc.close()
  })

  it("images answers its own region's transforms, only in its queue group, and no other region's", async () => {
    const { nc } = await as('images')
    expect(await subscriptionFate(nc, 'images.region.eu.transform', 'images')).toBe('open')
    expect(await subscriptionFate(nc, 'images.region.us.transform', 'images')).toMatch(
      /Permissions Violation/
    )
    expect(await subscriptionFate(nc, 'images.region.eu.transform')).toMatch(/Permissions Violation/)
    await nc.close()
  })

  it("releases creates the registry's mirrors of its regions, and no other stream by that name", async () => {
    const { nc, violations, settle } = await as('releases')
    const jsm = await jetstreamManager(nc)
    expect((await jsm.streams.info('KV_registry')).config.name).toBe('KV_registry')
    const mirror = await jsm.streams.add({
      name: 'KV_registry-us',
      mirror: { name: 'KV_registry' },
      mirror_direct: true,
    })
    expect(mirror.config.mirror?.name).toBe('KV_registry')
    await expect(
      nc.request('$JS.API.STREAM.CREATE.KV_registry-xx', JSON.stringify({ name: 'KV_registry-xx' }), {
        timeout: 1000,
      })
    ).rejects.toThrow(/Permissions Violation/)
    await settle()
    expect(violations).toEqual(['publish $JS.API.STREAM.CREATE.KV_registry-xx'])
    await nc.close()
  })

  it('web reads the registry but cannot write it or announce releases', async () => {
    const { nc, violations, settle } = await as('web')
    await expect(nc.request('$JS.API.STREAM.INFO.KV_registry', '', { timeout: 1000 })).resolves.toBeDefined()
    nc.publish('$KV.registry.module.item-piles', '{}')
    nc.publish('releases.packaged', '{}')
    await settle()
    expect(violations).toEqual(['publish $KV.registry.module.item-piles', 'publish releases.packaged'])
    await nc.close()
  })

  it('releases never deletes a stream and never answers image requests', async () => {
    const { nc, violations, settle } = await as('releases')
    await expect(nc.request('$JS.API.STREAM.DELETE.GITHUB', '', { timeout: 1000 })).rejects.toThrow(
      /Permissions Violation/
    )
    expect(await subscriptionFate(nc, 'images.fra.transform', 'images')).toMatch(/Permissions Violation/)
    await settle()
    expect(violations).toContain('publish $JS.API.STREAM.DELETE.GITHUB')
    expect((await (await jetstreamManager(operator)).streams.info('GITHUB')).config.name).toBe('GITHUB')
    await nc.close()
  })

  it('the notifier cannot touch the registry or consume GitHub deliveries', async () => {
    const { nc, violations, settle } = await as('notifier')
    nc.publish('$KV.registry.module.item-piles', '{}')
    await expect(nc.request('$JS.API.CONSUMER.CREATE.GITHUB.x', '{}', { timeout: 1000 })).rejects.toThrow(
      /Permissions Violation/
    )
    await settle()
    expect(violations).toEqual(
      expect.arrayContaining([
        'publish $KV.registry.module.item-piles',
        'publish $JS.API.CONSUMER.CREATE.GITHUB.x',
      ])
    )
    await nc.close()
  })
})

describe("the nats-exporter reads its server's figures and nothing else", () => {
  const request = (nc: NatsConnection, subject: string) => nc.request(subject, '', { timeout: 1000 })

  it('asks its server for VARZ and JSZ through the system account', async () => {
    const { nc } = await as('nats-exporter')
    const id = nc.info!.server_id
    const varz = (await request(nc, `$SYS.REQ.SERVER.${id}.VARZ`)).json<{ data: { server_name: string } }>()
    expect(varz.data.server_name).toBe('fra')
    const jsz = (await request(nc, `$SYS.REQ.SERVER.${id}.JSZ`)).json<{ data: { server_id: string } }>()
    expect(jsz.data.server_id).toBe(id)
    await nc.close()
  })

  it("cannot read the application's connections, act on a server, or publish an application subject", async () => {
    const { nc, violations, settle } = await as('nats-exporter')
    const id = nc.info!.server_id
    for (const subject of [
      '$SYS.REQ.ACCOUNT.VTTA.CONNZ',
      `$SYS.REQ.SERVER.${id}.CONNZ`,
      `$SYS.REQ.SERVER.${id}.RELOAD`,
      '$SYS.REQ.SERVER.PING.VARZ',
      '$SYS.REQ.SERVER.PING',
    ])
      await expect(request(nc, subject), subject).rejects.toThrow(/Permissions Violation/)
    nc.publish('releases.packaged', '{}')
    nc.publish('images.fra.transform', '{}')
    await settle()
    expect(violations).toEqual(
      expect.arrayContaining([
        'publish $SYS.REQ.ACCOUNT.VTTA.CONNZ',
        'publish releases.packaged',
        'publish images.fra.transform',
      ])
    )
    await nc.close()
  })

  it("cannot listen to everything, to the system account's events, or to another's replies", async () => {
    const { nc } = await as('nats-exporter')
    expect(await subscriptionFate(nc, '>')).toMatch(/Permissions Violation for Subscription to ">"/)
    expect(await subscriptionFate(nc, '$SYS.>')).toMatch(/Permissions Violation/)
    expect(await subscriptionFate(nc, '_INBOX.>')).toMatch(/Permissions Violation/)
    expect(await subscriptionFate(nc, '_INBOX_nats-exporter.mine')).toBe('open')
    await nc.close()
  })

  it("leaves the operator's system user as powerful as before", async () => {
    const nc = await connect({
      servers: nats.url,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(testNatsCredentials().seed('system'))),
    })
    const stats = (await request(nc, '$SYS.REQ.SERVER.PING.VARZ')).json<{ server: { name: string } }>()
    expect(stats.server.name).toBe('fra')
    await nc.close()
  })
})

describe('cluster routes authenticate', () => {
  let cluster: TestNatsCluster
  let dir: string
  beforeAll(async () => {
    cluster = await startNatsCluster('routes-auth')
    dir = mkdtempSync(join(tmpdir(), 'vtta-intruder-'))
  })
  afterAll(async () => {
    await cluster?.dispose()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a server without the route password never joins the cluster', async () => {
    const [client, monitor, clusterPort] = [await freePort(), await freePort(), await freePort()]
    const routeTo = cluster.nodes[0]!.routeHost
    writeFileSync(
      join(dir, 'intruder.conf'),
      `server_name: intruder
listen: "127.0.0.1:${client}"
http: "127.0.0.1:${monitor}"
cluster {
  name: vtta-local
  listen: "127.0.0.1:${clusterPort}"
  routes: ["nats-route://route:guessed-password@${routeTo}", "nats-route://${routeTo}"]
}
`
    )
    const proc = startProcess({
      dc: null,
      service: 'nats',
      url: `nats://127.0.0.1:${client}`,
      command: 'nats-server',
      args: ['-c', join(dir, 'intruder.conf')],
      env: { PATH: process.env.PATH ?? '' },
      logFile: join(dir, 'intruder.log'),
    })
    try {
      await waitForHttp(`http://127.0.0.1:${monitor}/healthz`, { timeoutMs: 10_000, what: 'intruder' })
      // Routes are retried every second: give it a few tries.
      await sleep(3_000)
      const routez = (await (await fetch(`http://127.0.0.1:${monitor}/routez`)).json()) as {
        num_routes: number
      }
      expect(routez.num_routes).toBe(0)
      const members = (await (await fetch(`${cluster.nodes[0]!.monitorUrl}/routez`)).json()) as {
        routes: Array<{ remote_id: string; ip: string; port: number }>
      }
      // The node still routes to its two real peers only.
      expect(members.routes).toHaveLength(2)
    } finally {
      await stopProcess(proc)
    }
  })
})
