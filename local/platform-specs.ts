/**
 * What the local platform runs, as process specs: one nats-server, its nats-exporter and every backend
 * service per datacenter, and the edge. Pure apart from writing each nats-server's configuration file, so the
 * supervisor can start a datacenter again (revive) from the same specs.
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Catalogue } from '#shared/catalogue.ts'
import { jetStreamLayout } from '#shared/regions.ts'
import { serviceNames, servicesOf, type ServiceName } from '#shared/services.ts'
import { datacenterAddresses, ports, standIns } from './addresses.ts'
import { directPeerHost, writeNatsServerConfig } from './nats-config.ts'
import { jetStreamServers, natsServerTopology } from './nats-auth/topology.ts'
import { wanLegs } from './wan/legs.ts'
import type { WanEdgeLocation } from './wan/edge-locations.ts'
import { unreachableAddress, wanAddress } from './wan/address.ts'
import { ensureNatsCredentials, type NatsCredentials } from './nats-auth/credentials.ts'
import type { ProcessSpec } from './processes.ts'
import type { LocalEnv } from './env.ts'

export const projectRoot = resolve(import.meta.dirname, '..')

/** The backend services that exist in this checkout. */
export const localServices = (): ServiceName[] =>
  serviceNames.filter((service) => existsSync(join(projectRoot, 'backend', service, 'service.ts')))

/** Edge settings `npm start` passes through from its environment to the Worker when set. */
export const edgeTunables = [
  'PROBE_INTERVAL_MS',
  'PROBE_TIMEOUT_MS',
  'DOWN_AFTER',
  'UP_AFTER',
  'HEALTH_MEMO_MS',
  'UPSTREAM_TIMEOUT_MS',
  'STEERING_MODE',
] as const

/** The edge's credentials, and the backend services that hold each (none: the edge only). */
const edgeCredentialHolders: Record<string, readonly ServiceName[]> = {
  ADMIN_TOKEN: [],
  PURGE_TOKEN: ['releases'],
  ORIGIN_CLIENT_ID: ['web'],
  ORIGIN_CLIENT_SECRET: ['web'],
}
const serviceEnv = (env: LocalEnv, service: ServiceName) =>
  Object.fromEntries(Object.entries(env).filter(([k]) => edgeCredentialHolders[k]?.includes(service) ?? true))

const baseEnv = () => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '',
  LANG: process.env.LANG ?? 'C.UTF-8',
})

export interface DatacenterSpecs {
  dc: string
  nats: ProcessSpec
  /** Where the nats-server answers /healthz. */
  natsMonitorUrl: string
  services: ProcessSpec[]
  /**
   * The datacenter's nats-exporter (backend/nats-exporter), started and stopped with the datacenter
   * (kill, revive) after its nats-server; not a service (no heartbeat, not in /health).
   */
  natsExporter: ProcessSpec
  /**
   * What Prometheus scrapes in this datacenter, by job of the issue #14 contract: full /metrics URLs,
   * `services` every backend service's internal listener, `nats` the nats-exporter.
   */
  metricsTargets: { services: string[]; nats: string[] }
}

/** The local platform's NATS credentials (created on first start, kept under LOCAL_DIR, never in git). */
export const localNatsCredentials = (localDir: string): NatsCredentials =>
  ensureNatsCredentials(resolve(localDir, 'secrets', 'nats'))

export function datacenterSpecs(
  catalogue: Catalogue,
  localDir: string,
  env: LocalEnv,
  o: { wan?: boolean } = {}
): DatacenterSpecs[] {
  const addresses = catalogue.map((_, i) => datacenterAddresses(i))
  const logs = join(localDir, 'logs')
  const credentials = localNatsCredentials(localDir)
  const layout = jetStreamLayout(catalogue)
  // How one server dials another's route and gateway listeners: directly, or with the WAN on through the
  // relay address of the pair (local/wan/address.ts), so routes and gateways carry the pair's RTT.
  const peerHost = o.wan
    ? (from: number, to: number) => (from === to ? directPeerHost(from, to) : wanAddress(from, to))
    : directPeerHost
  const reach = (from: number, to: number) => ({
    cluster: `${peerHost(from, to)}:${ports.natsCluster}`,
    gateway: `${peerHost(from, to)}:${ports.natsGateway}`,
  })
  return catalogue.map((dc, i) => {
    const a = addresses[i]!
    const dir = join(localDir, 'nats', dc.id)
    const topology = natsServerTopology(catalogue, i, reach)
    const conf = writeNatsServerConfig(
      dir,
      {
        dc: dc.id,
        region: dc.region,
        jetstream: topology.jetstream,
        host: a.host,
        clientPort: ports.natsClient,
        monitorPort: ports.natsMonitor,
        webSocketPort: ports.natsWebSocket,
        clusterPort: ports.natsCluster,
        gatewayPort: ports.natsGateway,
        storeDir: resolve(dir, 'jetstream'),
        ...(o.wan
          ? {
              advertise: {
                cluster: `${unreachableAddress(i)}:${ports.natsCluster}`,
                gateway: `${unreachableAddress(i)}:${ports.natsGateway}`,
              },
            }
          : {}),
      },
      {
        credentials,
        routeHosts: topology.routeHosts,
        gateways: topology.gateways,
        jetStreamServers: jetStreamServers(catalogue),
        scope: { region: dc.region, mirrorRegions: layout.mirrorRegions },
      }
    )
    // Across regions the release consumers run in the home region only (shared/services.ts).
    const services = servicesOf(catalogue, dc, localServices())
    return {
      dc: dc.id,
      natsMonitorUrl: a.natsMonitorUrl,
      metricsTargets: {
        services: services.map((service) => `${a.internalUrl(service)}/metrics`),
        nats: [`${a.natsExporterUrl}/metrics`],
      },
      natsExporter: {
        dc: dc.id,
        service: 'nats-exporter',
        url: a.natsExporterUrl,
        internalUrl: a.natsExporterUrl,
        command: process.execPath,
        args: [join(projectRoot, 'backend', 'nats-exporter', 'service.ts')],
        cwd: projectRoot,
        env: {
          ...baseEnv(),
          DC: dc.id,
          NATS_URL: a.natsUrl,
          // The local servers are named after their datacenter (nats-config.ts).
          NATS_SERVER_NAME: dc.id,
          // Its own user in the system account (production: the Docker secret nats_seed_nats_exporter).
          NATS_NKEY_SEED_FILE: credentials.seedFile('nats-exporter'),
          INTERNAL_HTTP_HOST: a.host,
          INTERNAL_HTTP_PORT: String(ports.natsExporter),
        },
        logFile: join(logs, `${dc.id}-nats-exporter.log`),
      },
      nats: {
        dc: dc.id,
        service: 'nats',
        url: a.natsUrl,
        command: 'nats-server',
        args: ['-c', conf],
        env: baseEnv(),
        logFile: join(logs, `${dc.id}-nats.log`),
      },
      services: services.map((service) => ({
        dc: dc.id,
        service,
        url: a.serviceUrl(service),
        internalUrl: a.internalUrl(service),
        command: process.execPath,
        args: [join(projectRoot, 'backend', service, 'service.ts')],
        cwd: projectRoot,
        env: {
          ...baseEnv(),
          ...serviceEnv(env, service),
          DC: dc.id,
          DC_NAME: dc.name,
          ...(service === 'images' || service === 'web' ? { REGION: dc.region } : {}),
          NATS_URL: a.natsUrl,
          // Its own credential only (production: the Docker secret nats_seed_<service>).
          NATS_NKEY_SEED_FILE: credentials.seedFile(service),
          HTTP_HOST: a.host,
          HTTP_PORT: String(ports.services[service]),
          INTERNAL_HTTP_HOST: a.host,
          INTERNAL_HTTP_PORT: String(ports.internal[service]),
          // One replica per datacenter of the home region, up to three (streams, KV buckets, object
          // store), placed there when there are several regions; the registry mirrored to the others:
          // releases makes the mirrors, web reads its own region's (as production's tasks derive it from
          // the catalogue, backend/runtime/catalogue-variables.ts).
          JETSTREAM_REPLICAS: String(layout.replicas),
          ...(layout.homeRegion ? { JETSTREAM_HOME_REGION: layout.homeRegion } : {}),
          ...((service === 'releases' || service === 'web') && layout.mirrorRegions.length > 0
            ? { REGISTRY_MIRROR_REGIONS: layout.mirrorRegions.join(',') }
            : {}),
          // JetStream reserves max_bytes up front: the zips must fit the local max_file_store (1GB).
          REGISTRY_ZIPS_MAX_BYTES: process.env.REGISTRY_ZIPS_MAX_BYTES ?? String(256 * 1024 * 1024),
          // The dashboard's figures (web's GET /api/dashboard): the one local Prometheus (local/monitoring/).
          ...(service === 'web' ? { PROMETHEUS_URL: 'http://127.0.0.1:9090' } : {}),
        },
        logFile: join(logs, `${dc.id}-${service}.log`),
      })),
    }
  })
}

export function edgeSpec(
  catalogue: Catalogue,
  opts: {
    localDir: string
    edgePort: number
    env: LocalEnv
    tunables: NodeJS.ProcessEnv
    /** Where each datacenter answers (default: the local platform's loopback addresses). */
    endpoints?: (index: number) => { web: string; natsWs: string }
    /** The Worker's NATS seed (default: the local platform's edge seed). */
    natsEdgeSeed?: string
    /** More environment for wrangler (the swarm's edge trusts its origin CA: NODE_EXTRA_CA_CERTS). */
    processEnv?: Record<string, string>
    /**
     * With WAN=1: the edge locations without a datacenter that the relay carries (local/wan/
     * edge-locations.ts), passed as EDGE_LOCATIONS with their legs. Default none.
     */
    edgeLocations?: readonly WanEdgeLocation[] | undefined
  }
): ProcessSpec {
  const localEndpoints = (i: number) => {
    const a = datacenterAddresses(i)
    return { web: a.serviceUrl('web'), natsWs: a.natsWsUrl }
  }
  const datacenters = catalogue.map((dc, i) => ({ ...dc, endpoints: (opts.endpoints ?? localEndpoints)(i) }))
  const vars: Record<string, string> = {
    DATACENTERS: JSON.stringify(datacenters),
    ALLOW_GEO_OVERRIDE: 'true',
    ADMIN_TOKEN: opts.env.ADMIN_TOKEN,
    PURGE_TOKEN: opts.env.PURGE_TOKEN,
    ORIGIN_CLIENT_ID: opts.env.ORIGIN_CLIENT_ID,
    ORIGIN_CLIENT_SECRET: opts.env.ORIGIN_CLIENT_SECRET,
    GITHUB_WEBHOOK_SECRET: opts.env.GITHUB_WEBHOOK_SECRET,
    NATS_EDGE_SEED: opts.natsEdgeSeed ?? localNatsCredentials(opts.localDir).seed('edge'),
  }
  // WAN=1: the edge stands where the client is, reaching each datacenter at the relay address of the
  // leg from the client's edge location: its nearest datacenter, or one of the relay's edge locations
  // without a datacenter. Only the loopback platform has those addresses (not the swarm).
  if (opts.tunables.WAN === '1' && !opts.endpoints) {
    const locations = opts.edgeLocations ?? []
    vars.DATACENTER_LEGS = JSON.stringify(wanLegs(catalogue, locations))
    if (locations.length > 0) vars.EDGE_LOCATIONS = JSON.stringify(locations)
  }
  for (const name of edgeTunables) {
    const value = opts.tunables[name]
    if (value !== undefined) vars[name] = value
  }
  return {
    dc: null,
    service: 'edge',
    url: `http://127.0.0.1:${opts.edgePort}`,
    command: process.execPath,
    args: [
      join(projectRoot, 'local', 'edge-dev.ts'),
      '127.0.0.1',
      String(opts.edgePort),
      resolve(opts.localDir, 'wrangler'),
    ],
    cwd: projectRoot,
    env: {
      ...baseEnv(),
      // Offline machine: use Miniflare's placeholder request.cf instead of fetching one, and send no telemetry.
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_SEND_METRICS: 'false',
      // wrangler would also append every line it prints to a debug log of its own, unbounded and at a
      // file open per line; its output already goes to the edge's bounded log file.
      WRANGLER_WRITE_LOGS: 'false',
      // wrangler's warnings and errors only: its per-request lines repeat the Worker's own request
      // log at about 1 ms of CPU each (local/edge-dev.ts), and the Worker's lines bypass this level.
      WRANGLER_LOG: 'warn',
      NO_COLOR: '1',
      EDGE_VARS: JSON.stringify(vars),
      ...opts.processEnv,
    },
    logFile: join(opts.localDir, 'logs', 'edge.log'),
  }
}

/** The GitHub and Discord stand-ins, each its own process; `githubEnv`: the local GitHub App. */
export function standInSpecs(
  localDir: string,
  githubEnv: Record<string, string> = {}
): Array<{ spec: ProcessSpec; readyPath: string }> {
  return (['github', 'discord'] as const).map((kind) => ({
    readyPath: standIns[kind].readyPath,
    spec: {
      dc: null,
      service: `${kind}-stand-in`,
      url: standIns[kind].url,
      command: process.execPath,
      args: [
        join(projectRoot, 'local', 'stand-ins', 'serve.ts'),
        kind,
        '127.0.0.1',
        String(standIns[kind].port),
      ],
      cwd: projectRoot,
      env: { ...baseEnv(), ...(kind === 'github' ? githubEnv : {}) },
      logFile: join(localDir, 'logs', `${kind}-stand-in.log`),
    },
  }))
}
