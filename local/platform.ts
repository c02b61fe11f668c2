/**
 * The local platform: for each datacenter of the catalogue, a nats-server and every backend
 * service on the datacenter's loopback address; then the edge under `wrangler dev`. Used by
 * `npm start` (start.ts) and by the end-to-end tests.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Catalogue } from '../shared/catalogue.ts'
import { serviceNames, type ServiceName } from '../shared/services.ts'
import { datacenterAddresses, ports, type DatacenterAddresses } from './addresses.ts'
import { natsServerConfig } from './nats-config.ts'
import { startProcess, stopProcess, type ProcessSpec, type Supervised } from './processes.ts'
import { waitForHttp } from './wait.ts'
import { freePort, portProblem } from './free-port.ts'
import type { LocalEnv } from './local-env.ts'
import { writeState } from './state.ts'

export const projectRoot = resolve(import.meta.dirname, '..')

export interface PlatformOptions {
  catalogue: Catalogue
  /** Where state.json, logs, NATS data and wrangler state go (default `.local`). */
  localDir: string
  edgePort: number
  env: LocalEnv
  /** Told about every process that ends while the platform runs; nothing is restarted. */
  onExit?: (proc: Supervised, how: string) => void
  readyTimeoutMs?: number
}

export interface Platform {
  edgeUrl: string
  processes: Supervised[]
  stop(): Promise<void>
}

/** The backend services that exist in this checkout (later issues add theirs). */
export const localServices = (): ServiceName[] =>
  serviceNames.filter((service) => existsSync(join(projectRoot, 'backend', service, 'service.ts')))

export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const { catalogue, localDir, env } = options
  const timeoutMs = options.readyTimeoutMs ?? 30_000
  const logs = join(localDir, 'logs')
  mkdirSync(logs, { recursive: true })
  const running: Supervised[] = []
  let stopping = false
  const edgeUrl = `http://127.0.0.1:${options.edgePort}`

  const launch = (spec: ProcessSpec) => {
    const proc = startProcess(spec)
    running.push(proc)
    void proc.exited.then((how) => {
      running.splice(running.indexOf(proc), 1)
      if (stopping) return
      writeState(localDir, edgeUrl, running)
      options.onExit?.(proc, how)
    })
    return proc
  }
  const died = (proc: Supervised) => proc.exited.then((how) => `${how} (log: ${proc.spec.logFile})`)

  const stop = async () => {
    stopping = true
    // Edge first (no new traffic), then services, then NATS last so services can drain.
    const order = (p: Supervised) => (p.spec.dc === null ? 0 : p.spec.service === 'nats' ? 2 : 1)
    for (const rank of [0, 1, 2])
      await Promise.all(running.filter((p) => order(p) === rank).map((p) => stopProcess(p)))
    rmSync(join(localDir, 'state.json'), { force: true })
  }

  const addresses = catalogue.map((_, i) => datacenterAddresses(i))
  await preflight(addresses, localServices(), options.edgePort)

  try {
    const baseEnv = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      LANG: process.env.LANG ?? 'C.UTF-8',
    }

    const nats = catalogue.map((dc, i) => {
      const a = addresses[i]!
      const dir = join(localDir, 'nats', dc.id)
      mkdirSync(dir, { recursive: true })
      const conf = join(dir, 'nats.conf')
      writeFileSync(
        conf,
        natsServerConfig({
          dc: dc.id,
          host: a.host,
          clientPort: ports.natsClient,
          monitorPort: ports.natsMonitor,
          webSocketPort: ports.natsWebSocket,
          clusterPort: ports.natsCluster,
          routes:
            catalogue.length > 1 ? addresses.filter((_, j) => j !== i).map((o) => o.natsClusterUrl) : [],
          storeDir: resolve(dir, 'jetstream'),
        })
      )
      return launch({
        dc: dc.id,
        service: 'nats',
        url: a.natsUrl,
        command: 'nats-server',
        args: ['-c', conf],
        env: baseEnv,
        logFile: join(logs, `${dc.id}-nats.log`),
      })
    })
    await Promise.all(
      nats.map((proc, i) =>
        waitForHttp(`${addresses[i]!.natsMonitorUrl}/healthz`, {
          timeoutMs,
          what: `${proc.spec.dc} nats`,
          abort: died(proc),
        })
      )
    )

    const services = catalogue.flatMap((dc, i) =>
      localServices().map((service) => {
        const a = addresses[i]!
        return launch({
          dc: dc.id,
          service,
          url: a.serviceUrl(service),
          command: process.execPath,
          args: [join(projectRoot, 'backend', service, 'service.ts')],
          cwd: projectRoot,
          env: {
            ...baseEnv,
            ...env,
            DC: dc.id,
            DC_NAME: dc.name,
            NATS_URL: a.natsUrl,
            HTTP_HOST: a.host,
            HTTP_PORT: String(ports.services[service]),
          },
          logFile: join(logs, `${dc.id}-${service}.log`),
        })
      })
    )
    await Promise.all(
      services.map((proc) =>
        waitForHttp(`${proc.spec.url}/readyz`, {
          timeoutMs,
          what: `${proc.spec.dc} ${proc.spec.service}`,
          abort: died(proc),
        })
      )
    )

    const datacenters = catalogue.map((dc, i) => ({
      ...dc,
      endpoints: { web: addresses[i]!.serviceUrl('web'), natsWs: addresses[i]!.natsWsUrl },
    }))
    const edge = launch({
      dc: null,
      service: 'edge',
      url: edgeUrl,
      command: process.execPath,
      args: [
        join(projectRoot, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
        'dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(options.edgePort),
        '--inspector-port',
        String(await freePort()),
        '--persist-to',
        resolve(localDir, 'wrangler'),
        '--show-interactive-dev-session=false',
        '--var',
        `DATACENTERS:${JSON.stringify(datacenters)}`,
        '--var',
        'ALLOW_GEO_OVERRIDE:true',
        '--var',
        `ADMIN_TOKEN:${env.ADMIN_TOKEN}`,
        '--var',
        `GITHUB_WEBHOOK_SECRET:${env.GITHUB_WEBHOOK_SECRET}`,
      ],
      cwd: projectRoot,
      env: {
        ...baseEnv,
        // Offline machine: use Miniflare's placeholder request.cf instead of fetching one, and send no telemetry.
        CLOUDFLARE_CF_FETCH_ENABLED: 'false',
        WRANGLER_SEND_METRICS: 'false',
        WRANGLER_LOG_PATH: join(logs, 'wrangler'),
        NO_COLOR: '1',
      },
      logFile: join(logs, 'edge.log'),
    })
    await waitForHttp(`${edgeUrl}/health`, { timeoutMs, what: 'edge (wrangler dev)', abort: died(edge) })

    writeState(localDir, edgeUrl, running)
    return { edgeUrl, processes: running, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/** Every address the platform will bind must be free; say which one is not, and why that usually is. */
async function preflight(
  addresses: DatacenterAddresses[],
  services: ServiceName[],
  edgePort: number
): Promise<void> {
  const wanted = [
    { host: '127.0.0.1', port: edgePort, what: 'the edge (EDGE_PORT)' },
    ...addresses.flatMap((a) => [
      ...[ports.natsClient, ports.natsCluster, ports.natsMonitor, ports.natsWebSocket].map((port) => ({
        host: a.host,
        port,
        what: 'nats-server',
      })),
      ...services.map((service) => ({ host: a.host, port: ports.services[service], what: service })),
    ]),
  ]
  for (const { host, port, what } of wanted) {
    const problem = await portProblem(host, port)
    if (problem === 'EADDRINUSE')
      throw new Error(`${host}:${port} (${what}) is already in use; is another \`npm start\` running?`)
    if (problem) throw new Error(`cannot listen on ${host}:${port} (${what}): ${problem}`)
  }
}
