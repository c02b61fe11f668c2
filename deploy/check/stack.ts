/**
 * stack.yml, the production Swarm stack: the invariants every service keeps (bounded logs, a health check
 * that gates rolling updates, update and rollback configs, restart policy, resources, a read-only root,
 * pinned images, placement in its datacenter, secrets as mounted files, the encrypted overlay) and the
 * stack-wide ones (every backend service present, nothing published, external versioned secrets). Each
 * problem reads "<service>: <invariant>: <detail>" or "stack: <invariant>: <detail>", run over EVERY service,
 * so a service added later that forgets one is reported.
 */
import { serviceNames } from '#shared/services.ts'
import { durationMs } from './duration.ts'
import { natsBlock, natsSetting } from './nats-conf.ts'
import type { FileReference, Service, Stack } from './stack-file.ts'

const normaliseConstraint = (c: string): string => c.replace(/\s+/g, '')

/** Service names of the `nats-<dc>` servers; the datacenters of the stack are their suffixes. */
export const natsDatacenters = (stack: Stack): string[] =>
  Object.keys(stack.services).flatMap((name) => /^nats-([a-z][a-z0-9-]*)$/.exec(name)?.[1] ?? [])

const isNats = (name: string): boolean => /^nats-/.test(name)
/** cloudflared-<dc>: the datacenter's Cloudflare Tunnel connector (not a node service). */
const isCloudflared = (name: string): boolean => /^cloudflared-/.test(name)
export const isNodeService = (name: string): boolean => !isNats(name) && !isCloudflared(name)
/** The datacenter of a per-datacenter service (nats-<dc>, web-<dc>, cloudflared-<dc>), else undefined. */
const datacenterOf = (name: string): string | undefined =>
  /^(?:nats|web|cloudflared)-([a-z][a-z0-9-]*)$/.exec(name)?.[1]
/** The backend service a stack service runs: web-<dc> runs web. */
const backendOf = (name: string): string => (/^web-/.test(name) ? 'web' : name)

/** The name of the secret or config a service mounts. */
const sourceOf = (ref: FileReference): string => (typeof ref === 'string' ? ref : ref.source)
/** Where it is mounted: /run/secrets/<target>, the name unless the long form says otherwise. */
const targetOf = (ref: FileReference): string => (typeof ref === 'string' ? ref : (ref.target ?? ref.source))
/** The long-form references (`source:` and `target:`), the only ones that can name a path. */
const longForms = (refs: FileReference[] | undefined) =>
  (refs ?? []).filter((ref): ref is Exclude<FileReference, string> => typeof ref === 'object')
const namesOf = (value: Service['configs'] | Service['networks']): string[] =>
  Array.isArray(value) ? value.map((v) => (typeof v === 'string' ? v : v.source)) : Object.keys(value ?? {})
const commandOf = (svc: Service): string[] => (Array.isArray(svc.command) ? svc.command : [])
const healthTestOf = (svc: Service): string => [svc.healthcheck?.test ?? []].flat().join(' ')
const secretPath = /^\/run\/secrets\/(.+)$/

/** Problems of one service, each "<service>: <invariant>: <detail>". */
function serviceProblems(name: string, svc: Service, stack: Stack, conf: string): string[] {
  const problems: string[] = []
  const fail = (invariant: string, detail: string) => problems.push(`${name}: ${invariant}: ${detail}`)
  const deploy = svc.deploy ?? {}
  const datacenters = natsDatacenters(stack)

  // Bounded logs: the default json-file driver never rotates, which is how the old server's disk filled up.
  const logging = svc.logging
  if (!logging) fail('logging', 'missing (the default json-file driver keeps logs forever)')
  else {
    if (!['json-file', 'local'].includes(logging.driver ?? ''))
      fail('logging', `driver must be json-file or local, not ${String(logging.driver)}`)
    if (!logging.options?.['max-size']) fail('logging', 'max-size is not set')
    if (!logging.options?.['max-file']) fail('logging', 'max-file is not set')
  }

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
    // cloudflared's own readiness check asks its metrics server's /ready.
    const probe = isNats(name) ? '/healthz' : isCloudflared(name) ? 'ready' : '/readyz'
    if (!health.test.join(' ').includes(probe)) fail('healthcheck', `must probe ${probe}`)
  }

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

  const rollback = deploy.rollback_config
  if (!rollback) fail('rollback_config', 'missing')
  else {
    if (!((rollback.parallelism ?? 0) >= 1)) fail('rollback_config', 'parallelism must be set')
    if (!(durationMs(rollback.monitor) > 0)) fail('rollback_config', 'monitor must be explicit')
  }

  const restart = deploy.restart_policy
  if (!restart) fail('restart_policy', 'missing')
  else {
    if (restart.condition !== 'any')
      fail('restart_policy', 'condition must be any (on-failure ignores exit 0)')
    if (!(durationMs(restart.delay) > 0)) fail('restart_policy', 'delay must be set (no hot restart loop)')
    if (restart.max_attempts !== undefined)
      fail('restart_policy', 'max_attempts would eventually give up on a server')
  }

  const resources = deploy.resources ?? {}
  if (!resources.limits?.cpus || !resources.limits.memory) fail('resources', 'limits need cpus and memory')
  if (!resources.reservations?.cpus || !resources.reservations.memory)
    fail('resources', 'reservations need cpus and memory')

  if (svc.read_only !== true) fail('read_only', 'the root filesystem must be read-only')
  if (!(svc.volumes ?? []).some((v) => typeof v === 'object' && v.type === 'tmpfs'))
    fail('tmpfs', 'needs a tmpfs volume (long syntax, type: tmpfs)')
  if (svc.tmpfs !== undefined)
    fail('tmpfs', 'the short `tmpfs:` key is dropped by docker stack deploy; use volumes')

  // A version tag (or a digest); never latest, never implicit.
  const image = /^(?<repository>[^@]+?)(?::(?<tag>[\w][\w.-]*))?(?<digest>@sha256:[a-f0-9]{64})?$/.exec(
    svc.image ?? ''
  )
  const tag = image?.groups?.tag
  if (!svc.image || !image) fail('image', 'missing')
  else if (!image.groups?.digest && !(tag && /^v?\d+\.\d+\.\d+([-+.][\w.-]+)?$/.test(tag))) {
    fail('image', `tag must be a release version, not ${tag ?? '(none, i.e. latest)'}`)
  }

  const placement = deploy.placement ?? {}
  const constraints = (placement.constraints ?? []).map(normaliseConstraint)
  const ownDc = datacenterOf(name)
  if (isNats(name)) {
    const dc = name.slice('nats-'.length)
    if (!constraints.includes(`node.labels.dc==${dc}`))
      fail('placement', `needs the constraint node.labels.dc == ${dc}`)
    if (deploy.replicas !== 1) fail('replicas', 'one nats-server per datacenter service')
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
    if ((deploy.mode ?? 'replicated') !== 'replicated' || deploy.replicas !== datacenters.length) {
      fail('replicas', `must be one per datacenter (${datacenters.length})`)
    }
  }

  // Secrets: declared at the top level, and every *_FILE variable points at a secret this service mounts.
  const mounted = new Set<string>()
  for (const ref of svc.secrets ?? []) {
    const source = sourceOf(ref)
    if (!Object.hasOwn(stack.secrets, source))
      fail('secrets', `${source} is not declared in the top-level secrets`)
    mounted.add(targetOf(ref))
  }
  const env = svc.environment ?? {}
  for (const [key, value] of Object.entries(env)) {
    if (!key.endsWith('_FILE')) continue
    const secret = secretPath.exec(value ?? '')?.[1]
    if (!secret || !mounted.has(secret))
      fail('secrets', `${key} must point at a mounted secret (/run/secrets/<target>)`)
  }

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

  if (isNats(name)) {
    const dc = name.slice('nats-'.length)
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
  } else if (isCloudflared(name)) {
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
  } else {
    if (svc.init !== true) fail('init', 'node services run under init: true')
    // Its own NATS user, never another service's (shared/nats-permissions.ts).
    const seed = secretPath.exec(env.NATS_NKEY_SEED_FILE ?? '')?.[1]
    const seedSource = longForms(svc.secrets).find((r) => r.target === seed)?.source
    // web-<dc> and the others: the kind of service is the one its command runs.
    const kind = /backend\/([a-z]+)\/service\.ts/.exec(commandOf(svc).join(' '))?.[1] ?? name
    if (seedSource !== `nats_seed_${kind}`)
      fail('secrets', `NATS_NKEY_SEED_FILE must be its own seed, the secret nats_seed_${kind}`)
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
  return problems
}

/** Every problem of the stack: stack-wide ones ("stack: ...") and those of every service. */
export function stackProblems(stack: Stack, conf: string): string[] {
  const problems: string[] = []
  const fail = (invariant: string, detail: string) => problems.push(`stack: ${invariant}: ${detail}`)
  const services = stack.services

  for (const service of serviceNames) {
    if (service === 'web') continue // one per datacenter, below
    if (!Object.hasOwn(services, service)) fail('services', `backend service ${service} is missing`)
  }
  if (natsDatacenters(stack).length === 0) fail('services', 'no nats-<dc> service')
  // Each datacenter: its web service and its tunnel, the only way in from the internet.
  for (const dc of natsDatacenters(stack)) {
    for (const service of [`web-${dc}`, `cloudflared-${dc}`])
      if (!Object.hasOwn(services, service)) fail('services', `${service} is missing`)
  }
  // Nothing is published: a published port is reachable from the internet around Access (Docker's own
  // iptables rules bypass the host firewall).
  for (const [name, svc] of Object.entries(services)) {
    if ((svc.ports ?? []).length > 0)
      fail('ports', `${name} publishes a port: nothing is published, the tunnel is the only way in`)
  }

  const networks = stack.networks
  if (Object.keys(networks).length === 0) fail('networks', 'no overlay network declared')
  for (const [network, spec] of Object.entries(networks)) {
    if (spec?.driver !== 'overlay') fail('networks', `${network} must be an overlay`)
    if (String(spec?.driver_opts?.encrypted) !== 'true') fail('networks', `${network} must be encrypted`)
  }
  // Secrets are created by the operator (`docker secret create <key>_v1 -`), never read from a file of the
  // repository, and carry a version so that a rotation is a new name.
  for (const [secret, spec] of Object.entries(stack.secrets)) {
    if (spec.external !== true) fail('secrets', `${secret} must be external (created by the operator)`)
    else if (!new RegExp(`^${secret}_v\\d+$`).test(spec.name ?? ''))
      fail('secrets', `${secret} needs a versioned name (${secret}_v1), rotated by a new one`)
  }

  for (const [name, svc] of Object.entries(services))
    problems.push(...serviceProblems(name, svc, stack, conf))
  return problems
}
