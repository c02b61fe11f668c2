/** A real nats-server for one test file or global setup: free ports on 127.0.0.1, JetStream and WebSocket on. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeNatsServerConfig } from '../../local/nats-config.ts'
import { testNatsCredentials } from './nats-credentials.ts'
import { startProcess, stopProcess, type Supervised } from '../../local/processes.ts'
import { freePort } from '../../local/free-port.ts'
import { waitForHttp } from '../../local/wait.ts'

export interface TestNatsServer {
  url: string
  wsUrl: string
  monitorUrl: string
  proc: Supervised
  /** Stops the server (data kept, so `restart()` brings the same server back). */
  stop(): Promise<void>
  restart(): Promise<void>
  /** Stops the server and deletes its data. */
  dispose(): Promise<void>
}

/**
 * `scope`: the datacenter whose subjects the users' permissions name. By default `*`: one server
 * stands in for every datacenter (and region) a test's services say they are in; the security tests
 * pass a real one, with its `region` and the registry's `mirrorRegions`.
 */
export async function startNatsServer(
  name = 'test',
  opts: { scope?: string; region?: string; mirrorRegions?: string[] } = {}
): Promise<TestNatsServer> {
  const dir = mkdtempSync(join(tmpdir(), `vtta-nats-${name}-`))
  const [clientPort, monitorPort, webSocketPort] = [await freePort(), await freePort(), await freePort()]
  const conf = writeNatsServerConfig(
    dir,
    {
      dc: name,
      host: '127.0.0.1',
      clientPort,
      monitorPort,
      webSocketPort,
      clusterPort: 0,
      storeDir: join(dir, 'jetstream'),
    },
    {
      credentials: testNatsCredentials(),
      routeHosts: [],
      permissionsDc: opts.scope ?? '*',
      // Standing in for every datacenter, it stands in for every region too.
      scope: {
        region: opts.region ?? (opts.scope ? undefined : '*'),
        ...(opts.mirrorRegions ? { mirrorRegions: opts.mirrorRegions } : {}),
      },
    }
  )
  const monitorUrl = `http://127.0.0.1:${monitorPort}`
  const launch = async () => {
    const proc = startProcess({
      dc: name,
      service: 'nats',
      url: `nats://127.0.0.1:${clientPort}`,
      command: 'nats-server',
      args: ['-c', conf],
      env: { PATH: process.env.PATH ?? '' },
      logFile: join(dir, 'nats.log'),
    })
    await waitForHttp(`${monitorUrl}/healthz`, { timeoutMs: 15_000, what: 'nats-server', abort: proc.exited })
    return proc
  }
  const server: TestNatsServer = {
    url: `nats://127.0.0.1:${clientPort}`,
    wsUrl: `ws://127.0.0.1:${webSocketPort}`,
    monitorUrl,
    proc: await launch(),
    stop: () => stopProcess(server.proc),
    async restart() {
      server.proc = await launch()
    },
    async dispose() {
      await stopProcess(server.proc)
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return server
}
