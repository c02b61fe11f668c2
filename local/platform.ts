/**
 * The local platform's supervisor: starts every datacenter (nats-server, then its services) and
 * the edge, waits until each is ready, keeps `.local/state.json` true (complete, the edge and the
 * control API included, before the edge first answers), restarts nothing by itself, and answers a
 * small control API on loopback (`npm run swarm -- revive <dc>` uses it).
 * Used by `npm start` (start.ts), the end-to-end tests and the benchmarks.
 */
import { createServer, type Server } from 'node:http'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Catalogue } from '#shared/catalogue.ts'
import type { ServiceName } from '#shared/services.ts'
import { datacenterAddresses, ports, standIns, type DatacenterAddresses } from './addresses.ts'
import { startProcess, stopProcess, type ProcessSpec, type Supervised } from './processes.ts'
import { waitForHttp } from './wait.ts'
import { freePort, portProblem } from './free-port.ts'
import type { LocalEnv } from './env.ts'
import { readState, writeState } from './state.ts'
import { ensureLocalGitHubApp } from './github-app.ts'
import { enrollFixtureRepositories } from './enroll-fixtures.ts'
import {
  datacenterSpecs,
  edgeSpec,
  localNatsCredentials,
  localServices,
  standInSpecs,
  type DatacenterSpecs,
} from './platform-specs.ts'
import { monitoringListeners, monitoringServices, monitoringSpecs } from './monitoring/specs.ts'
import { errorMessage } from '#shared/error-message.ts'
import { wanSpec } from './wan/spec.ts'
import { wanEdgeLocations } from './wan/edge-locations.ts'
import { placeLocalMetaLeader } from './nats-meta-leader.ts'

export { projectRoot, localServices } from './platform-specs.ts'

export interface PlatformOptions {
  catalogue: Catalogue
  /** Where state.json, logs, NATS data and wrangler state go (default `.local`). */
  localDir: string
  edgePort: number
  env: LocalEnv
  /** Edge settings passed through to the Worker (see edgeTunables); default: process.env. */
  tunables?: NodeJS.ProcessEnv
  /** Told about every process that ends while the platform runs; nothing is restarted. */
  onExit?: (proc: Supervised, how: string) => void
  readyTimeoutMs?: number
  /** Run the emulated WAN (local/wan/): its relay is ready before any datacenter starts. */
  wan?: boolean
}

export interface Platform {
  edgeUrl: string
  controlUrl: string
  processes: Supervised[]
  /** Starts again every process of `dc` that is not running, and waits until they are ready. */
  revive(dc: string): Promise<string[]>
  /**
   * A rolling restart of one process: a graceful stop (SIGTERM; SIGUSR2, lame duck, for nats),
   * then started again and waited for until ready.
   */
  restart(dc: string, service: string): Promise<{ stoppedMs: number; startedMs: number }>
  stop(): Promise<void>
}

export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const { catalogue, localDir } = options
  // The local GitHub App (key generated on first start): the stand-in is it, release services use it.
  const gitHubApp = ensureLocalGitHubApp(localDir)
  const env = { ...options.env, ...gitHubApp }
  const timeoutMs = options.readyTimeoutMs ?? 30_000
  mkdirSync(join(localDir, 'logs'), { recursive: true })
  const running: Supervised[] = []
  let stopping = false
  const edgeUrl = `http://127.0.0.1:${options.edgePort}`
  let control: Server | undefined
  let controlUrl = ''
  const saveState = () => writeState(localDir, { edge: edgeUrl, control: controlUrl }, running)
  // The edge locations without a datacenter that the relay and the edge are both given (one list, one
  // order): those whose round trip to every datacenter of this catalogue is known.
  const wanLocations = options.wan ? wanEdgeLocations(catalogue) : undefined
  if (wanLocations?.locations.length)
    console.log(
      `WAN: edge locations without a datacenter: ${wanLocations.locations.map((l) => `${l.id} (${l.name})`).join(', ')}`
    )
  for (const { id, reason } of wanLocations?.left ?? [])
    console.log(`WAN: edge location ${id} left out: ${reason}`)

  /** Processes being restarted on purpose: their exit is no news. */
  const restarting = new Set<Supervised>()
  const launch = (spec: ProcessSpec) => {
    const proc = startProcess(spec)
    running.push(proc)
    void proc.exited.then((how) => {
      running.splice(running.indexOf(proc), 1)
      if (stopping) return
      saveState()
      if (!restarting.delete(proc)) options.onExit?.(proc, how)
    })
    return proc
  }
  const died = (proc: Supervised) => proc.exited.then((how) => `${how} (log: ${proc.spec.logFile})`)
  const isRunning = (spec: ProcessSpec) =>
    running.some((p) => p.spec.dc === spec.dc && p.spec.service === spec.service)

  /**
   * Starts what is not running of these datacenters: NATS first, then the services and the
   * nats-exporter once NATS is up.
   */
  const startDatacenters = async (specs: DatacenterSpecs[]) => {
    const nats = specs.filter((d) => !isRunning(d.nats)).map((d) => ({ d, proc: launch(d.nats) }))
    await Promise.all(
      nats.map(({ d, proc }) =>
        waitForHttp(`${d.natsMonitorUrl}/healthz`, { timeoutMs, what: `${d.dc} nats`, abort: died(proc) })
      )
    )
    const services = specs.flatMap((d) =>
      [...d.services, d.natsExporter].filter((s) => !isRunning(s)).map(launch)
    )
    await Promise.all(
      services.map((proc) =>
        waitForHttp(`${proc.spec.internalUrl ?? proc.spec.url}/readyz`, {
          timeoutMs,
          what: `${proc.spec.dc} ${proc.spec.service}`,
          abort: died(proc),
        })
      )
    )
    return [...nats.map((n) => n.proc), ...services].map((p) => p.spec.service)
  }

  const stop = async () => {
    stopping = true
    control?.close()
    // Edge and monitoring first (no new traffic, no alerts about the stop), then services, then
    // NATS so services can drain, then the stand-ins, which draining services may still call.
    const order = (p: Supervised) =>
      p.spec.service === 'edge' || monitoringServices.has(p.spec.service)
        ? 0
        : p.spec.dc === null
          ? 3
          : p.spec.service === 'nats'
            ? 2
            : 1
    for (const rank of [0, 1, 2, 3])
      await Promise.all(running.filter((p) => order(p) === rank).map((p) => stopProcess(p)))
    rmSync(join(localDir, 'state.json'), { force: true })
  }

  await preflight(
    catalogue.map((_, i) => datacenterAddresses(i)),
    localServices(),
    options.edgePort
  )
  const specs = datacenterSpecs(catalogue, localDir, env, { wan: options.wan ?? false })
  const revive = async (dc: string) => {
    const d = specs.find((s) => s.dc === dc)
    if (!d) throw new Error(`unknown datacenter ${dc}`)
    const started = await startDatacenters([d])
    saveState()
    return started
  }

  const restart = async (dc: string, service: string) => {
    const d = specs.find((s) => s.dc === dc)
    if (!d) throw new Error(`unknown datacenter ${dc}`)
    const proc = running.find((p) => p.spec.dc === dc && p.spec.service === service)
    if (!proc) throw new Error(`unknown process ${dc} ${service} (not running?)`)
    restarting.add(proc)
    const t0 = Date.now()
    proc.child.kill(service === 'nats' ? 'SIGUSR2' : 'SIGTERM')
    await proc.exited
    const t1 = Date.now()
    await startDatacenters([d])
    saveState()
    return { stoppedMs: t1 - t0, startedMs: Date.now() - t1 }
  }

  try {
    await Promise.all(
      // Monitoring starts with the stand-ins: Prometheus finds the services up as they come.
      [
        ...standInSpecs(localDir, { ...gitHubApp }),
        ...monitoringSpecs(localDir, specs),
        ...(wanLocations ? [wanSpec(catalogue, localDir, { edgeLocations: wanLocations.locations })] : []),
      ].map(({ spec, readyPath }) => {
        const proc = launch(spec)
        return waitForHttp(`${spec.url}${readyPath}`, { timeoutMs, what: spec.service, abort: died(proc) })
      })
    )
    await startDatacenters(specs)
    const meta = await placeLocalMetaLeader(catalogue, localNatsCredentials(localDir))
    if (meta)
      console.log(
        `JetStream meta leader: ${meta.leader} (home region; ${meta.stepDowns} step-down(s) from ${meta.leaders[0] ?? '?'})`
      )
    ;({ server: control, url: controlUrl } = await startControl({ revive, restart }))
    const edge = launch(
      edgeSpec(catalogue, {
        localDir,
        edgePort: options.edgePort,
        env,
        tunables: options.tunables ?? process.env,
        edgeLocations: wanLocations?.locations,
      })
    )
    // Written in the same tick as the edge is spawned, long before wrangler can answer: a script
    // that waits for the edge and then reads state.json finds every process and the control API.
    saveState()
    await Promise.all([
      waitForHttp(`${edgeUrl}/health`, { timeoutMs, what: 'edge (wrangler dev)', abort: died(edge) }),
      // Out of the box, the fixture repositories may publish (`npm run release:demo`, the e2e suite);
      // done while wrangler starts, which takes longer.
      enrollFixtureRepositories(readState(localDir), localDir, standIns.github.url, gitHubApp),
    ])
    return { edgeUrl, controlUrl, processes: running, revive, restart, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * The supervisor's control API on a free loopback port:
 *   POST /datacenters/<dc>/revive               start what is not running of <dc>
 *   POST /datacenters/<dc>/restart/<service>    a graceful restart of one process
 */
async function startControl(
  ops: Pick<Platform, 'revive' | 'restart'>
): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    const match = /^\/datacenters\/([a-z][a-z0-9-]{1,15})\/(revive|restart\/([a-z-]{1,32}))$/.exec(
      req.url ?? ''
    )
    if (req.method !== 'POST' || !match) {
      reply(404, { error: { code: 'not_found', message: 'no such route' } })
      return
    }
    const [, dc, action, service] = match
    const work =
      action === 'revive'
        ? ops.revive(dc!).then((started) => ({ dc, started }))
        : ops.restart(dc!, service!).then((t) => ({ dc, service, ...t }))
    work.then(
      (body) => reply(200, body),
      (error: unknown) =>
        reply(errorMessage(error).startsWith('unknown') ? 404 : 500, {
          error: { code: `${action!.split('/')[0]}_failed`, message: errorMessage(error) },
        })
    )
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${port}` }
}

/** Every address the platform will bind must be free; say which one is not, and why that usually is. */
async function preflight(
  addresses: DatacenterAddresses[],
  services: ServiceName[],
  edgePort: number
): Promise<void> {
  const wanted = [
    { host: '127.0.0.1', port: edgePort, what: 'the edge (EDGE_PORT)' },
    { host: '127.0.0.1', port: standIns.github.port, what: 'the GitHub stand-in' },
    { host: '127.0.0.1', port: standIns.discord.port, what: 'the Discord stand-in' },
    ...monitoringListeners(),
    ...addresses.flatMap((a) => [
      ...[ports.natsClient, ports.natsCluster, ports.natsGateway, ports.natsMonitor, ports.natsWebSocket].map(
        (port) => ({
          host: a.host,
          port,
          what: 'nats-server',
        })
      ),
      ...services.map((service) => ({ host: a.host, port: ports.services[service], what: service })),
      { host: a.host, port: ports.natsExporter, what: 'nats-exporter' },
    ]),
  ]
  for (const { host, port, what } of wanted) {
    const problem = await portProblem(host, port)
    if (problem === 'EADDRINUSE')
      throw new Error(`${host}:${port} (${what}) is already in use; is another \`npm start\` running?`)
    if (problem) throw new Error(`cannot listen on ${host}:${port} (${what}): ${problem}`)
  }
}
