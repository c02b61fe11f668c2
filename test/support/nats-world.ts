/**
 * Real nats-servers for every datacenter of a catalogue, configured as `npm start` configures them
 * (local/nats-config.ts, local/nats-auth/topology.ts: one cluster per region, gateways between regions,
 * JetStream where the catalogue says), but on free ports of 127.0.0.1 so that a test runs beside a running
 * `npm start` (which holds 127.0.n.1's fixed ports) and beside other test files. Resolves once the
 * super-cluster has formed: every server has a gateway to every other region, routes to every other
 * server of its region, and sees a JetStream meta leader with every JetStream server in the meta group.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import type { Catalogue } from '#shared/catalogue.ts'
import { regionsOf } from '#shared/regions.ts'
import { writeNatsServerConfig } from '../../local/nats-config.ts'
import { hasGateways, jetStreamServers, natsServerTopology } from '../../local/nats-auth/topology.ts'
import { testNatsCredentials } from './nats-credentials.ts'
import { killProcess, startProcess, stopProcess, type Supervised } from '../../local/processes.ts'
import { createServer, type Server } from 'node:net'
import { waitForHttp } from '../../local/wait.ts'

export interface WorldServer {
  dc: string
  region: string
  jetstream: boolean
  url: string
  monitorUrl: string
  proc: Supervised
  /** SIGKILL, no goodbye. */
  kill(): Promise<void>
  /** Starts the same server again (same data, same ports) and waits for /healthz. */
  restart(): Promise<void>
}

export interface TestNatsWorld {
  servers: WorldServer[]
  server(dc: string): WorldServer
  /** Milliseconds from spawning the servers to the super-cluster formed (see waitForWorld). */
  formedMs: number
  dispose(): Promise<void>
}

const gatewayzSchema = z.object({
  name: z.string(),
  outbound_gateways: z.record(z.string(), z.unknown()).optional(),
  inbound_gateways: z.record(z.string(), z.unknown()).optional(),
})
// nats-server 2.9.10's /routez names a route's peer by its server id only (/varz gives each server's).
const routezSchema = z.object({ routes: z.array(z.object({ remote_id: z.string() })).optional() })
const varzSchema = z.object({
  server_id: z.string(),
  server_name: z.string(),
  tags: z.array(z.string()).optional(),
})
const jszSchema = z.object({
  disabled: z.boolean().optional(),
  meta_cluster: z.object({ leader: z.string().optional(), cluster_size: z.number().optional() }).optional(),
})

export const monitor = async <T extends z.ZodType>(url: string, schema: T): Promise<z.infer<T>> =>
  schema.parse(await (await fetch(url)).json())

export const gatewayz = (s: Pick<WorldServer, 'monitorUrl'>) =>
  monitor(`${s.monitorUrl}/gatewayz`, gatewayzSchema)
export const routez = (s: Pick<WorldServer, 'monitorUrl'>) => monitor(`${s.monitorUrl}/routez`, routezSchema)
export const jsz = (s: Pick<WorldServer, 'monitorUrl'>) => monitor(`${s.monitorUrl}/jsz`, jszSchema)
export const varz = (s: Pick<WorldServer, 'monitorUrl'>) => monitor(`${s.monitorUrl}/varz`, varzSchema)

/** The other regions a server has an outbound gateway to, sorted. */
export const outboundRegions = async (s: WorldServer) =>
  Object.keys((await gatewayz(s)).outbound_gateways ?? {}).sort()

/** The servers a server routes to, by name (the server ids of `world`'s servers translated), sorted. */
export async function routedServers(s: WorldServer, servers: readonly WorldServer[]): Promise<string[]> {
  const names = new Map<string, string>()
  for (const o of servers) names.set((await varz(o)).server_id, o.dc)
  return ((await routez(s)).routes ?? []).map((r) => names.get(r.remote_id) ?? r.remote_id).sort()
}

/** Whether every running server sees the world whole: gateways, routes, one meta leader over all JetStream servers. */
async function formed(servers: WorldServer[], voters: number): Promise<boolean> {
  const regions = [...new Set(servers.map((s) => s.region))]
  try {
    for (const s of servers) {
      const others = regions.filter((r) => r !== s.region).sort()
      if (regions.length > 1 && (await outboundRegions(s)).join() !== others.join()) return false
      const peers = servers.filter((o) => o.region === s.region && o !== s).map((o) => o.dc)
      if ((await routedServers(s, servers)).join() !== peers.sort().join()) return false
      const js = await jsz(s)
      if (s.jetstream && (js.meta_cluster?.leader === undefined || js.meta_cluster.cluster_size !== voters))
        return false
    }
    return true
  } catch {
    return false
  }
}

/**
 * `n` different free ports of 127.0.0.1: all held open until the last is found, since thirty ports
 * asked for one at a time come back twice now and then (the kernel reuses a port just closed).
 */
async function distinctFreePorts(n: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer()
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', resolve)
      })
    }
    return servers.map((server) => {
      const address = server.address()
      if (address === null || typeof address === 'string') throw new Error('no TCP port')
      return address.port
    })
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  }
}

export async function startNatsWorld(catalogue: Catalogue, name = 'world'): Promise<TestNatsWorld> {
  const dir = mkdtempSync(join(tmpdir(), `vtta-nats-${name}-`))
  const free = await distinctFreePorts(catalogue.length * 5)
  const ports = catalogue.map((_, i) => {
    const [client, monitor, ws, cluster, gateway] = free.slice(i * 5, i * 5 + 5) as [
      number,
      number,
      number,
      number,
      number,
    ]
    return { client, monitor, ws, cluster, gateway }
  })
  // Every server dials the others directly (the platform's directPeerHost), on their own ports here.
  const reach = (_from: number, to: number) => ({
    cluster: `127.0.0.1:${ports[to]!.cluster}`,
    gateway: `127.0.0.1:${ports[to]!.gateway}`,
  })
  const servers = catalogue.map((dc, i): WorldServer => {
    const p = ports[i]!
    const topology = natsServerTopology(catalogue, i, reach)
    const conf = writeNatsServerConfig(
      join(dir, dc.id),
      {
        dc: dc.id,
        region: dc.region,
        jetstream: topology.jetstream,
        host: '127.0.0.1',
        clientPort: p.client,
        monitorPort: p.monitor,
        webSocketPort: p.ws,
        clusterPort: p.cluster,
        gatewayPort: p.gateway,
        storeDir: join(dir, dc.id, 'jetstream'),
      },
      {
        credentials: testNatsCredentials(),
        routeHosts: topology.routeHosts,
        gateways: hasGateways(topology) ? topology.gateways : [],
        jetStreamServers: jetStreamServers(catalogue),
      }
    )
    const monitorUrl = `http://127.0.0.1:${p.monitor}`
    const launch = () =>
      startProcess({
        dc: dc.id,
        service: 'nats',
        url: `nats://127.0.0.1:${p.client}`,
        command: 'nats-server',
        args: ['-c', conf],
        env: { PATH: process.env.PATH ?? '' },
        logFile: join(dir, `${dc.id}.log`),
      })
    const server: WorldServer = {
      dc: dc.id,
      region: dc.region,
      jetstream: topology.jetstream,
      url: `nats://127.0.0.1:${p.client}`,
      monitorUrl,
      proc: launch(),
      kill: () => killProcess(server.proc),
      async restart() {
        server.proc = launch()
        await waitForHttp(`${monitorUrl}/healthz`, {
          timeoutMs: 15_000,
          what: `nats ${dc.id}`,
          abort: server.proc.exited,
        })
      },
    }
    return server
  })
  const started = Date.now()
  const world: TestNatsWorld = {
    servers,
    server: (dc) => {
      const s = servers.find((o) => o.dc === dc)
      if (!s) throw new Error(`no server ${dc} in this world`)
      return s
    },
    formedMs: 0,
    async dispose() {
      await Promise.all(servers.map((s) => stopProcess(s.proc)))
      rmSync(dir, { recursive: true, force: true })
    },
  }
  try {
    await Promise.all(
      servers.map((s) =>
        waitForHttp(`${s.monitorUrl}/healthz`, {
          timeoutMs: 15_000,
          what: `nats ${s.dc}`,
          abort: s.proc.exited,
        })
      )
    )
    const deadline = started + 60_000
    while (!(await formed(servers, jetStreamServers(catalogue)))) {
      if (Date.now() > deadline)
        throw new Error(
          `the super-cluster of ${regionsOf(catalogue)
            .map((r) => r.id)
            .join(', ')} did not form within 60 s (logs in ${dir})`
        )
      await sleep(100)
    }
    world.formedMs = Date.now() - started
  } catch (err) {
    // The logs stay for the error's reader.
    await Promise.all(servers.map((s) => stopProcess(s.proc)))
    throw err
  }
  return world
}
