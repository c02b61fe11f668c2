/**
 * The invariants of one service of stack.yml, each problem "stack.yml: <service>: <invariant>: <detail>". Every service
 * keeps the common ones (bounded logs, a health check that gates rolling updates, update, rollback and
 * restart policies, resources, a read-only root, a pinned image, placement, declared secrets, configs and
 * networks); then those of its kind: a nats-<dc> server, a cloudflared-<dc> tunnel, a monitoring program
 * (prometheus, alertmanager, node-exporter: official images, not ours), or a node service (web-<dc> and the
 * backend services spread over the datacenters; the platform services among them mount the catalogue).
 */
import { serviceNames } from '#shared/services.ts'
import { durationMs } from './duration.ts'
import { deployFiles } from './files.ts'
import { natsBlock, natsSetting } from './nats-conf.ts'
import type { FileReference, Service, Stack } from './stack-file.ts'

interface ServiceCheck {
  name: string
  svc: Service
  stack: Stack
  natsConf: string
  fail: (invariant: string, detail: string) => void
}

/** The nats-exporter: a node service spread over the datacenters, not a nats-<dc> server. */
const natsExporter = 'nats-exporter'

/** Service names of the `nats-<dc>` servers; the datacenters of the stack are their suffixes. */
export const natsDatacenters = (stack: Stack): string[] =>
  Object.keys(stack.services).flatMap((name) =>
    name === natsExporter ? [] : (/^nats-([a-z][a-z0-9-]*)$/.exec(name)?.[1] ?? [])
  )

const isNats = (name: string): boolean => /^nats-/.test(name) && name !== natsExporter
/** cloudflared-<dc>: the datacenter's Cloudflare Tunnel connector (not a node service). */
const isCloudflared = (name: string): boolean => /^cloudflared-/.test(name)
/** Prometheus, Alertmanager and the node exporter: the official images, each its own program. */
const monitoringServices = ['prometheus', 'alertmanager', 'node-exporter']
const isMonitoring = (name: string): boolean => monitoringServices.includes(name)
export const isNodeService = (name: string): boolean =>
  !isNats(name) && !isCloudflared(name) && !isMonitoring(name)
/** The datacenter of a per-datacenter service (nats-<dc>, web-<dc>, cloudflared-<dc>), else undefined. */
const datacenterOf = (name: string): string | undefined =>
  name === natsExporter ? undefined : /^(?:nats|web|cloudflared)-([a-z][a-z0-9-]*)$/.exec(name)?.[1]
/** The services spread over datacenters, one task each: node services that are not per datacenter. */
export const isSpreadService = (name: string): boolean =>
  isNodeService(name) && datacenterOf(name) === undefined
/** The backend service a stack service runs: web-<dc> runs web. */
const backendOf = (name: string): string => (/^web-/.test(name) ? 'web' : name)

const normaliseConstraint = (c: string): string => c.replace(/\s+/g, '')
/** The name of the secret or config a service mounts. */
const sourceOf = (ref: FileReference): string => (typeof ref === 'string' ? ref : ref.source)
/** Where it is mounted: /run/secrets/<target>, the name unless the long form says otherwise. */
const targetOf = (ref: FileReference): string => (typeof ref === 'string' ? ref : (ref.target ?? ref.source))
/** Where a config is mounted: its target, or /<name> for the short form. */
const configTarget = (ref: FileReference): string =>
  typeof ref === 'string' ? `/${ref}` : (ref.target ?? `/${ref.source}`)
/** The long-form references (`source:` and `target:`), the only ones that can name a path. */
const longForms = (refs: FileReference[] | undefined) =>
  (refs ?? []).filter((ref): ref is Exclude<FileReference, string> => typeof ref === 'object')
/** The secrets a service mounts, by their name under /run/secrets. */
const mountedSecrets = (svc: Service): Set<string> => new Set((svc.secrets ?? []).map(targetOf))
const namesOf = (value: Service['configs'] | Service['networks']): string[] =>
  Array.isArray(value) ? value.map((v) => (typeof v === 'string' ? v : v.source)) : Object.keys(value ?? {})
const commandOf = (svc: Service): string[] => (Array.isArray(svc.command) ? svc.command : [])
/** The kind of service a stack service runs: the one its command runs (web-<dc> runs web), else its name. */
export const kindOf = (name: string, svc: Service): string =>
  /backend\/([a-z-]+)\/service\.ts/.exec(commandOf(svc).join(' '))?.[1] ?? name
const healthTestOf = (svc: Service): string => [svc.healthcheck?.test ?? []].flat().join(' ')
const secretPath = /^\/run\/secrets\/(.+)$/

/** Bounded logs. */
function logging(c: ServiceCheck): void {
  const { svc, fail } = c
  // Bounded logs: the default json-file driver never rotates, which is how the old server's disk filled up.
  const logging = svc.logging
  if (!logging) fail('logging', 'missing (the default json-file driver keeps logs forever)')
  else {
    if (!['json-file', 'local'].includes(logging.driver ?? ''))
      fail('logging', `driver must be json-file or local, not ${String(logging.driver)}`)
    if (!logging.options?.['max-size']) fail('logging', 'max-size is not set')
    if (!logging.options?.['max-file']) fail('logging', 'max-file is not set')
  }
}

/** A health check that gates rolling updates, probing what the kind of service serves. */
function healthcheck(c: ServiceCheck): void {
  const { name, svc, fail } = c
  const health = svc.healthcheck
  if (
    !health ||
    health.disable ||
    !Array.isArray(health.test) ||
    !['CMD', 'CMD-SHELL'].includes(health.test[0] ?? '')
  ) {
    fail('healthcheck', 'missing or disabled (rolling updates are gated on it)')
  } else {
    const { interval, timeout, retries, start_period } = health
    for (const [key, value] of Object.entries({ interval, timeout, retries, start_period })) {
      if (value === undefined) fail('healthcheck', `${key} is not set`)
    }
    // cloudflared's own readiness check asks its metrics server's /ready; a monitoring program its own port.
    const probe = isNats(name)
      ? '/healthz'
      : isCloudflared(name)
        ? 'ready'
        : isMonitoring(name)
          ? 'http://127.0.0.1:'
          : '/readyz'
    if (!health.test.join(' ').includes(probe)) fail('healthcheck', `must probe ${probe}`)
  }
}

/** Rolling updates one datacenter at a time, health-gated, rolled back on failure. */
function updates(c: ServiceCheck): void {
  const { name, svc, fail } = c
  const deploy = svc.deploy ?? {}
  const health = svc.healthcheck
  const update = deploy.update_config
  if (!update) fail('update_config', 'missing')
  else {
    if (update.parallelism !== 1) fail('update_config', 'parallelism must be 1 (one datacenter at a time)')
    if (update.failure_action !== 'rollback') fail('update_config', 'failure_action must be rollback')
    if (!(durationMs(update.monitor) > 0))
      fail('update_config', 'monitor must be explicit (the docs disagree on the default)')
    // A one-task service per datacenter (web-<dc>, cloudflared-<dc>) updates start-first: a deploy updates
    // all of them at once, so stop-first empties every datacenter together (caught by the roll drill).
    // Others stop-first: start-first + max_replicas_per_node deadlocks when replicas == nodes
    // (moby/moby#40797), and a nats-server's node-local volume cannot be held by two tasks.
    const singleTask = datacenterOf(name) !== undefined && !isNats(name)
    const order = singleTask ? 'start-first' : 'stop-first'
    if (update.order !== order) fail('update_config', `order must be ${order}`)
    if (singleTask && deploy.rollback_config?.order !== 'start-first')
      fail('update_config', 'its rollback_config order must be start-first too')
    if (singleTask && deploy.placement?.max_replicas_per_node !== undefined)
      fail('update_config', 'start-first leaves the new task nowhere under max_replicas_per_node')
    // Health-gated: a new task that never turns healthy must fail the update while it is still monitored,
    // so the monitor window has to reach past the health check's first verdict after start_period.
    const firstVerdictMs = durationMs(health?.start_period) + durationMs(health?.interval)
    if (Number.isFinite(firstVerdictMs) && !(durationMs(update.monitor) >= firstVerdictMs)) {
      fail(
        'update_config',
        `monitor (${String(update.monitor)}) must cover the healthcheck's start_period + interval (${firstVerdictMs} ms)`
      )
    }
  }
}

/** A rollback config of its own. */
function rollback(c: ServiceCheck): void {
  const { fail } = c
  const deploy = c.svc.deploy ?? {}
  const rollback = deploy.rollback_config
  if (!rollback) fail('rollback_config', 'missing')
  else {
    if (!((rollback.parallelism ?? 0) >= 1)) fail('rollback_config', 'parallelism must be set')
    if (!(durationMs(rollback.monitor) > 0)) fail('rollback_config', 'monitor must be explicit')
  }
}

/** A restart policy that never gives up and never loops hot. */
function restart(c: ServiceCheck): void {
  const { fail } = c
  const deploy = c.svc.deploy ?? {}
  const restart = deploy.restart_policy
  if (!restart) fail('restart_policy', 'missing')
  else {
    if (restart.condition !== 'any')
      fail('restart_policy', 'condition must be any (on-failure ignores exit 0)')
    if (!(durationMs(restart.delay) > 0)) fail('restart_policy', 'delay must be set (no hot restart loop)')
    if (restart.max_attempts !== undefined)
      fail('restart_policy', 'max_attempts would eventually give up on a server')
  }
}

/** Limits and reservations. */
function resources(c: ServiceCheck): void {
  const { fail } = c
  const deploy = c.svc.deploy ?? {}
  const resources = deploy.resources ?? {}
  if (!resources.limits?.cpus || !resources.limits.memory) fail('resources', 'limits need cpus and memory')
  if (!resources.reservations?.cpus || !resources.reservations.memory)
    fail('resources', 'reservations need cpus and memory')
}

/** A read-only root, /tmp a bounded tmpfs. */
function filesystem(c: ServiceCheck): void {
  const { svc, fail } = c
  if (svc.read_only !== true) fail('read_only', 'the root filesystem must be read-only')
  if (!(svc.volumes ?? []).some((v) => typeof v === 'object' && v.type === 'tmpfs'))
    fail('tmpfs', 'needs a tmpfs volume (long syntax, type: tmpfs)')
  if (svc.tmpfs !== undefined)
    fail('tmpfs', 'the short `tmpfs:` key is dropped by docker stack deploy; use volumes')
}

/** A pinned image. */
function image(c: ServiceCheck): void {
  const { svc, fail } = c
  // A version tag (or a digest); never latest, never implicit.
  const image = /^(?<repository>[^@]+?)(?::(?<tag>[\w][\w.-]*))?(?<digest>@sha256:[a-f0-9]{64})?$/.exec(
    svc.image ?? ''
  )
  const tag = image?.groups?.tag
  if (!svc.image || !image) fail('image', 'missing')
  else if (!image.groups?.digest && !(tag && /^v?\d+\.\d+\.\d+([-+.][\w.-]+)?$/.test(tag))) {
    fail('image', `tag must be a release version, not ${tag ?? '(none, i.e. latest)'}`)
  } else if (image.groups?.repository === 'nats' && tag && !mirrorsCompareAndSet(tag)) {
    // Older servers drop the registry's compare-and-set writes in the regions' read mirrors after any
    // gap (backend/registry/mirror-stall.ts; nats-server 48fecd284, in 2.12.0).
    fail('image', `nats ${tag} breaks the registry's read mirrors; run 2.12.0 or newer`)
  }
}

/** Whether an official nats image's version tag is 2.12.0 or newer. */
function mirrorsCompareAndSet(tag: string): boolean {
  const [major = 0, minor = 0] = tag.replace(/^v/, '').split('.').map(Number)
  return major > 2 || (major === 2 && minor >= 12)
}

/**
 * Placement and replicas: in its own datacenter, or one task per datacenter (which datacenters, and so how
 * many replicas, follows from the production catalogue: spread.ts).
 */
function placement(c: ServiceCheck): void {
  const { name, fail } = c
  const deploy = c.svc.deploy ?? {}
  const placement = deploy.placement ?? {}
  const constraints = (placement.constraints ?? []).map(normaliseConstraint)
  const ownDc = datacenterOf(name)
  if (isNats(name)) {
    const dc = name.slice('nats-'.length)
    if (!constraints.includes(`node.labels.dc==${dc}`))
      fail('placement', `needs the constraint node.labels.dc == ${dc}`)
    if (deploy.replicas !== 1) fail('replicas', 'one nats-server per datacenter service')
  } else if (isMonitoring(name)) {
    // On every node (global), or at least two replicas on different nodes: one node lost leaves one.
    const global = deploy.mode === 'global'
    if (!global && !((deploy.replicas ?? 1) >= 2 && placement.max_replicas_per_node === 1))
      fail('replicas', 'global, or at least 2 replicas with max_replicas_per_node 1')
  } else if (ownDc !== undefined) {
    // web-<dc> and cloudflared-<dc>: one task, in its own datacenter (its tunnel reaches it by name).
    if (!constraints.includes(`node.labels.dc==${ownDc}`))
      fail('placement', `needs the constraint node.labels.dc == ${ownDc}`)
    if (deploy.replicas !== 1)
      fail('replicas', `one ${name.slice(0, -ownDc.length - 1)} per datacenter service`)
  } else {
    if (placement.max_replicas_per_node !== 1) fail('placement', 'max_replicas_per_node must be 1')
    if (constraints.length === 0)
      fail('placement', 'needs a constraint selecting the (dc-labelled) app nodes')
    if (!(placement.preferences ?? []).some((p) => p.spread === 'node.labels.dc')) {
      fail('placement', 'must spread over node.labels.dc')
    }
  }
}

/** Secrets declared at the top level; every *_FILE variable points at a secret this service mounts. */
function secrets(c: ServiceCheck): void {
  const { svc, stack, fail } = c
  // Secrets: declared at the top level, and every *_FILE variable points at a secret this service mounts.
  for (const ref of svc.secrets ?? []) {
    const source = sourceOf(ref)
    if (!Object.hasOwn(stack.secrets, source))
      fail('secrets', `${source} is not declared in the top-level secrets`)
  }
  const mounted = mountedSecrets(svc)
  // A file that is no secret (the catalogue) is a Docker config, mounted where the service says.
  const configTargets = new Set((svc.configs ?? []).map(configTarget))
  const env = svc.environment ?? {}
  for (const [key, value] of Object.entries(env)) {
    if (!key.endsWith('_FILE') || configTargets.has(value ?? '')) continue
    const secret = secretPath.exec(value ?? '')?.[1]
    if (!secret || !mounted.has(secret))
      fail('secrets', `${key} must point at a mounted secret (/run/secrets/<target>) or config`)
  }
}

/** Configs and networks declared at the top level, the encrypted overlay joined, ports in host mode. */
function references(c: ServiceCheck): void {
  const { svc, stack, fail } = c
  for (const config of namesOf(svc.configs)) {
    if (!Object.hasOwn(stack.configs, config))
      fail('configs', `${config} is not declared in the top-level configs`)
  }

  for (const network of namesOf(svc.networks)) {
    if (!Object.hasOwn(stack.networks, network))
      fail('networks', `${network} is not declared in the top-level networks`)
  }
  if (namesOf(svc.networks).length === 0)
    fail('networks', 'must join the encrypted overlay, not the default network')

  // Published ports bypass the routing mesh: it would forward to a task in any datacenter.
  for (const port of svc.ports ?? []) {
    if (typeof port !== 'object' || port.mode !== 'host')
      fail('ports', `publish in mode: host (${JSON.stringify(port)})`)
  }
}

/** A nats-<dc> server: lame duck, a cluster member by name, its own users, JetStream on its own volume. */
function natsServer(c: ServiceCheck): void {
  const { name, svc, stack, natsConf: conf, fail } = c
  const dc = name.slice('nats-'.length)
  const deploy = svc.deploy ?? {}
  const env = svc.environment ?? {}
  const mounted = mountedSecrets(svc)
  if (svc.stop_signal !== 'SIGUSR2') fail('stop_signal', 'must be SIGUSR2 (lame-duck mode)')
  const lameDuck = durationMs(natsSetting(conf, 'lame_duck_duration'))
  if (!(durationMs(svc.stop_grace_period) > lameDuck)) {
    fail(
      'stop_grace_period',
      `must be longer than nats.conf lame_duck_duration (${String(natsSetting(conf, 'lame_duck_duration'))})`
    )
  }
  if (deploy.endpoint_mode !== 'dnsrr') fail('endpoint_mode', 'a cluster member needs dnsrr, not a VIP')
  if (env.SERVER_NAME !== name) fail('environment', `SERVER_NAME must be ${name}`)
  if (env.DC_TAG !== `dc:${dc}`) fail('environment', `DC_TAG must be dc:${dc}`)
  // Its own datacenter's users, permissions and route credentials (`npm run nats-auth`).
  const auth = longForms(svc.secrets).find((r) => r.target === '/etc/nats/auth.conf')
  if (auth?.source !== `nats_auth_${dc}`)
    fail('secrets', `must mount its own nats_auth_${dc} at /etc/nats/auth.conf (npm run nats-auth)`)
  if (svc.hostname !== undefined && svc.hostname !== name) fail('hostname', `must be ${name}`)
  // JetStream's store on a named (node-local) volume of this datacenter's own, declared at the top level.
  const storeDir = natsSetting(natsBlock(conf, 'jetstream') ?? '', 'store_dir')
  const store = (svc.volumes ?? []).find(
    (v) => typeof v === 'object' && v.type === 'volume' && v.target === storeDir
  )
  if (typeof store !== 'object')
    fail('volumes', `JetStream needs a persistent volume at its store_dir (${String(storeDir)})`)
  else {
    if (store.source !== `${name}-data`) fail('volumes', `the JetStream volume must be ${name}-data`)
    if (!Object.hasOwn(stack.volumes, store.source ?? ''))
      fail('volumes', `${String(store.source)} is not declared in the top-level volumes`)
  }
  // The WebSocket listener's certificate and key are secrets this server mounts.
  const tls = natsBlock(natsBlock(conf, 'websocket') ?? '', 'tls') ?? ''
  for (const key of ['cert_file', 'key_file']) {
    const secret = secretPath.exec(natsSetting(tls, key) ?? '')?.[1]
    if (secret && !mounted.has(secret))
      fail('secrets', `nats.conf websocket ${key} needs the secret ${secret} mounted`)
  }
}

/** A cloudflared-<dc> tunnel connector. */
function tunnel(c: ServiceCheck): void {
  const { svc, fail } = c
  const env = svc.environment ?? {}
  const mounted = mountedSecrets(svc)
  // Outbound only, its token a Docker secret it mounts (never an argument or a variable).
  const command = commandOf(svc)
  if (!command.includes('tunnel') || !command.includes('run'))
    fail('command', 'must run `cloudflared tunnel run`')
  const tokenFile = command[command.indexOf('--token-file') + 1] ?? ''
  const secret = secretPath.exec(command.includes('--token-file') ? tokenFile : '')?.[1]
  if (!secret || !mounted.has(secret))
    fail('secrets', 'the tunnel token must be a mounted Docker secret (--token-file /run/secrets/<target>)')
  if (command.includes('--token') || Object.keys(env).some((k) => k === 'TUNNEL_TOKEN'))
    fail('secrets', 'the tunnel token must never be an argument or a variable')
}

/** A monitoring program: never root, no VIP, nothing published (the operator reaches it through SSH). */
function monitoring(c: ServiceCheck): void {
  const { svc, fail } = c
  if (!svc.user || /^(0|root)(:|$)/.test(String(svc.user))) fail('user', 'must run as a non-root user')
  if (svc.deploy?.endpoint_mode !== 'dnsrr')
    fail('endpoint_mode', 'dnsrr: Prometheus finds each task by DNS (tasks.<service>)')
  if ((svc.ports ?? []).length > 0) fail('ports', 'nothing of the monitoring is published')
}

/** A node service (web-<dc> and the backend services): init, its own NATS user, an internal port, its own datacenter. */
function nodeService(c: ServiceCheck): void {
  const { name, svc, stack, fail } = c
  const env = svc.environment ?? {}
  const health = svc.healthcheck
  const datacenters = natsDatacenters(stack)
  if (svc.init !== true) fail('init', 'node services run under init: true')
  // Its own NATS user, never another service's (shared/nats-permissions.ts).
  const seed = secretPath.exec(env.NATS_NKEY_SEED_FILE ?? '')?.[1]
  const seedSource = longForms(svc.secrets).find((r) => r.target === seed)?.source
  // web-<dc> and the others: the kind of service is the one its command runs.
  const kind = /backend\/([a-z-]+)\/service\.ts/.exec(commandOf(svc).join(' '))?.[1] ?? name
  const ownSeed = `nats_seed_${kind.replaceAll('-', '_')}`
  if (seedSource !== ownSeed)
    fail('secrets', `NATS_NKEY_SEED_FILE must be its own seed, the secret ${ownSeed}`)
  // Health and metrics are on the internal port: probed there, and never published.
  const internalPort = env.INTERNAL_HTTP_PORT ?? ''
  if (!/^\d+$/.test(internalPort) || internalPort === env.HTTP_PORT)
    fail('environment', 'INTERNAL_HTTP_PORT must be set, apart from HTTP_PORT (health and metrics)')
  else {
    if (health && !healthTestOf(svc).includes(`:${internalPort}/readyz`))
      fail('healthcheck', `must probe /readyz on the internal port ${internalPort}`)
    const portOf = (p: NonNullable<Service['ports']>[number]) =>
      String(typeof p === 'object' ? p.target : p)
        .split(':')
        .at(-1)
    if ((svc.ports ?? []).some((p) => portOf(p) === internalPort))
      fail('ports', `the internal port ${internalPort} (health, metrics) must never be published`)
  }
  const drainMs = Number(env.SHUTDOWN_GRACE_MS ?? 10_000)
  if (!(durationMs(svc.stop_grace_period) > drainMs)) {
    fail(
      'stop_grace_period',
      `must be longer than SHUTDOWN_GRACE_MS (${drainMs} ms), or Swarm kills a draining task`
    )
  }
  // Each task must find its own datacenter's NATS server and id, whatever node it lands on.
  for (const dc of datacenters) {
    const onNode = (value: string | undefined) => (value ?? '').replaceAll('{{.Node.Hostname}}', dc)
    const firstHost = /^nats:\/\/([^:/,]+)/.exec(onNode(env.NATS_URL))?.[1]
    if (firstHost !== `nats-${dc}`)
      fail('environment', `NATS_URL on a node in ${dc} must name nats-${dc} first`)
    if (onNode(env.DC) !== dc) fail('environment', `DC on a node in ${dc} must be ${dc}`)
  }
  if (
    !commandOf(svc)
      .join(' ')
      .includes(`backend/${backendOf(name)}/service.ts`)
  ) {
    fail('command', `must run backend/${backendOf(name)}/service.ts`)
  }
}

/**
 * A platform service (web-<dc>, images, releases, notifier) mounts the production catalogue and says where
 * (DATACENTERS_FILE): one service spans datacenters of several regions, and a task learns its region and
 * the JetStream layout from the catalogue and its DC, never from Swarm (templates cannot read node labels).
 */
function catalogue(c: ServiceCheck): void {
  const { name, svc, stack, fail } = c
  const kind = /backend\/([a-z-]+)\/service\.ts/.exec(commandOf(svc).join(' '))?.[1] ?? name
  if (!(serviceNames as readonly string[]).includes(kind)) return
  // ./deploy/… as written, or the absolute path `docker stack config` resolves it to.
  const isCatalogue = (path = '') =>
    path === `./${deployFiles.catalogue}` || path.endsWith(`/${deployFiles.catalogue}`)
  const mounted = (svc.configs ?? []).find((ref) => isCatalogue(stack.configs[sourceOf(ref)]?.file))
  if (mounted === undefined) {
    fail(
      'catalogue',
      `must mount the production catalogue (a config of ./${deployFiles.catalogue}): its tasks learn their region from it`
    )
    return
  }
  const target = configTarget(mounted)
  if (svc.environment?.DATACENTERS_FILE !== target)
    fail('catalogue', `DATACENTERS_FILE must name where the catalogue is mounted (${target})`)
}

const everyService = [
  logging,
  healthcheck,
  updates,
  rollback,
  restart,
  resources,
  filesystem,
  image,
  placement,
  secrets,
  references,
]

/** Problems of one service, each "stack.yml: <service>: <invariant>: <detail>". */
export function serviceProblems(name: string, svc: Service, stack: Stack, natsConf: string): string[] {
  const problems: string[] = []
  const fail = (invariant: string, detail: string) =>
    problems.push(`${deployFiles.stack}: ${name}: ${invariant}: ${detail}`)
  const check: ServiceCheck = { name, svc, stack, natsConf, fail }
  for (const invariants of everyService) invariants(check)
  if (isNats(name)) natsServer(check)
  else if (isCloudflared(name)) tunnel(check)
  else if (isMonitoring(name)) monitoring(check)
  else {
    nodeService(check)
    catalogue(check)
  }
  return problems
}
