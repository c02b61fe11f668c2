/**
 * Three real nats-servers clustered on 127.0.0.1 free ports (JetStream on, tagged dc:fra/ams/lon,
 * `unique_tag: "dc:"`, as the local platform runs them), for R3 streams and KV in tests. Resolves
 * once every server sees a JetStream meta leader.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeNatsServerConfig } from '../../local/nats-config.ts'
import { testNatsCredentials } from './nats-credentials.ts'
import { killProcess, startProcess, stopProcess, type Supervised } from '../../local/processes.ts'
import { freePort } from '../../local/free-port.ts'
import { waitForHttp } from '../../local/wait.ts'

export interface ClusterNode {
  dc: string
  url: string
  monitorUrl: string
  /** `host:port` of its cluster listener. */
  routeHost: string
  proc: Supervised
  /** SIGKILL, no goodbye. */
  kill(): Promise<void>
  stop(): Promise<void>
  /** Starts the same server again (same data, same ports). */
  restart(): Promise<void>
}

export interface TestNatsCluster {
  nodes: ClusterNode[]
  /** Client URLs, one per node. */
  urls: string[]
  /** Resolves when every running node reports a JetStream meta leader. */
  waitForMetaLeader(timeoutMs?: number): Promise<void>
  dispose(): Promise<void>
}

const dcs = ['fra', 'ams', 'lon']

export async function startNatsCluster(name = 'cluster'): Promise<TestNatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), `vtta-nats-${name}-`))
  const ports = await Promise.all(
    dcs.map(async () => ({
      client: await freePort(),
      monitor: await freePort(),
      ws: await freePort(),
      cluster: await freePort(),
    }))
  )
  const nodes: ClusterNode[] = dcs.map((dc, i) => {
    const p = ports[i]!
    const conf = writeNatsServerConfig(
      join(dir, dc),
      {
        dc,
        host: '127.0.0.1',
        clientPort: p.client,
        monitorPort: p.monitor,
        webSocketPort: p.ws,
        clusterPort: p.cluster,
        storeDir: join(dir, dc, 'jetstream'),
      },
      { credentials: testNatsCredentials(), routeHosts: ports.map((o) => `127.0.0.1:${o.cluster}`) }
    )
    const monitorUrl = `http://127.0.0.1:${p.monitor}`
    const launch = () =>
      startProcess({
        dc,
        service: 'nats',
        url: `nats://127.0.0.1:${p.client}`,
        command: 'nats-server',
        args: ['-c', conf],
        env: { PATH: process.env.PATH ?? '' },
        logFile: join(dir, `${dc}.log`),
      })
    const node: ClusterNode = {
      dc,
      url: `nats://127.0.0.1:${p.client}`,
      monitorUrl,
      routeHost: `127.0.0.1:${p.cluster}`,
      proc: launch(),
      kill: () => killProcess(node.proc),
      stop: () => stopProcess(node.proc),
      async restart() {
        node.proc = launch()
        await waitForHttp(`${monitorUrl}/healthz`, {
          timeoutMs: 15_000,
          what: `nats ${dc}`,
          abort: node.proc.exited,
        })
      },
    }
    return node
  })

  const cluster: TestNatsCluster = {
    nodes,
    urls: nodes.map((n) => n.url),
    async waitForMetaLeader(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      for (const node of nodes) {
        if (node.proc.child.exitCode !== null || node.proc.child.signalCode !== null) continue
        for (;;) {
          try {
            const jsz = (await (await fetch(`${node.monitorUrl}/jsz`)).json()) as {
              meta_cluster?: { leader?: string }
            }
            if (jsz.meta_cluster?.leader) break
          } catch {
            // not up yet
          }
          if (Date.now() > deadline)
            throw new Error(`nats ${node.dc}: no JetStream meta leader after ${timeoutMs} ms`)
          await sleep(100)
        }
      }
    },
    async dispose() {
      await Promise.all(nodes.map((n) => n.stop()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
  try {
    await Promise.all(
      nodes.map((n) =>
        waitForHttp(`${n.monitorUrl}/healthz`, {
          timeoutMs: 15_000,
          what: `nats ${n.dc}`,
          abort: n.proc.exited,
        })
      )
    )
    await cluster.waitForMetaLeader()
  } catch (err) {
    await cluster.dispose()
    throw err
  }
  return cluster
}
