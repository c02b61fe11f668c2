/**
 * The production deployment: stack.yml (with deploy/nats.conf and the production catalogue
 * deploy/datacenters.production.json), the Dockerfile and .dockerignore. (wrangler.toml: wrangler.test.ts.)
 *
 * The invariants are written as checkers that return a list of problems ("<service>: <invariant>: <detail>"),
 * run over EVERY service of the parsed stack, so a service added later that forgets one fails here; the
 * negative tests break a copy of the real files and show that each checker reports it, naming the cause.
 */
import { describe, it, expect } from 'vitest'
import { parse } from 'yaml'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { serviceNames } from '#shared/services.ts'
import { parseReachableCatalogue } from '#shared/catalogue.ts'
import { jetStreamLimitsFor, natsAuthConfig } from '../../local/nats-auth/auth-config.ts'
import { natsIdentities, type NatsIdentity } from '../../local/nats-auth/credentials.ts'
import { productionRouteHost, productionServerStores } from '../../local/nats-auth/command.ts'

// YAML documents are checked structurally, field by field; their shape is exactly what is under test.
type Doc = { [key: string]: any }

const root = fileURLToPath(new URL('../../', import.meta.url))
const readRepoFile = (path: string): string => readFileSync(root + path, 'utf8')

/** What an operator exports before `docker stack deploy`; everything else has a default in the file. */
const deployEnv: Record<string, string> = { VTTA_VERSION: '0.1.0', GITHUB_APP_ID: '123456' }

const hasDockerCli = (() => {
  try {
    execFileSync('docker', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

// ---------------------------------------------------------------------------------------------------------
// Loading

/** Compose variable interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`. */
function interpolate(text: string, env: Record<string, string | undefined>): string {
  const pattern = /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g
  return text.replace(
    pattern,
    (_match: string, dollar?: string, braced?: string, op?: string, arg?: string, bare?: string) => {
      if (dollar) return '$'
      const name = (braced ?? bare) as string
      const value = env[name]
      if (!op) return value ?? ''
      const unset = op.startsWith(':') ? !value : value === undefined
      if (op.endsWith('-')) return unset ? (arg ?? '') : (value as string)
      if (unset) throw new Error(`required variable ${name} is missing a value: ${arg}`)
      return value as string
    }
  )
}

/** Interpolates every string value (as `docker stack` does after parsing, so comments stay untouched). */
function interpolateValues(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolate(value, env)
  if (Array.isArray(value)) return value.map((item) => interpolateValues(item, env))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateValues(v, env)]))
  }
  return value
}

/** Parses a compose file the way `docker stack config` reads it: anchors, `<<` merges, then interpolation. */
function loadStack(text: string, env: Record<string, string | undefined>): Doc {
  return interpolateValues(parse(text, { merge: true }), env) as Doc
}

const stackText = readRepoFile('stack.yml')
const stack = loadStack(stackText, deployEnv)
const natsConf = readRepoFile('deploy/nats.conf')
const catalogueFile = 'deploy/datacenters.production.json'
const catalogue: unknown = JSON.parse(readRepoFile(catalogueFile))
const dockerfile = readRepoFile('Dockerfile')
const dockerignore = existsSync(root + '.dockerignore') ? readRepoFile('.dockerignore') : undefined

/** A deep copy that shares nothing (YAML aliases become shared objects), so a mutation breaks one service only. */
const copyOf = (doc: Doc): Doc => JSON.parse(JSON.stringify(doc)) as Doc

// ---------------------------------------------------------------------------------------------------------
// Small parsers

/** Go/compose durations ("60s", "1m0s", "500ms", "1h30m") in milliseconds; NaN when unparseable. */
function durationMs(value: unknown): number {
  if (typeof value === 'number') return value / 1e6 // compose reads a bare number as nanoseconds
  if (typeof value !== 'string' || value.trim() === '') return Number.NaN
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  }
  let rest = value.trim()
  let total = 0
  while (rest !== '') {
    const part = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest)
    if (!part) return Number.NaN
    total += Number(part[1]) * (units[part[2] as string] as number)
    rest = rest.slice(part[0].length)
  }
  return total
}

/** A top-level setting of nats.conf (`key: value`, `key = value` or `key value`), quotes removed. */
function natsSetting(conf: string, key: string): string | undefined {
  const match = new RegExp(`^\\s*${key}\\s*[:=]?\\s*"?([^"\\s#]+)"?`, 'm').exec(conf)
  return match?.[1]
}

/** The body of a `name { ... }` block of nats.conf (braces balanced, comments ignored); undefined if absent. */
function natsBlock(conf: string, name: string): string | undefined {
  const text = conf.replace(/#.*$/gm, '')
  const start = new RegExp(`^\\s*${name}\\s*[:=]?\\s*\\{`, 'm').exec(text)
  if (!start) return undefined
  let depth = 1
  for (let i = start.index + start[0].length; i < text.length; i++) {
    if (text[i] === '{') depth++
    else if (text[i] === '}' && --depth === 0) return text.slice(start.index + start[0].length, i)
  }
  return undefined
}

/**
 * The datacenters the servers route to: the `ROUTES` of the auth.conf files `npm run nats-auth`
 * writes from the production catalogue (route URLs carry the route password, so nats.conf only says
 * `routes: $ROUTES`). Rendered here from the catalogue exactly as the command renders them.
 */
const routedDatacenters = (productionCatalogue: unknown): string[] => {
  const ids = catalogueIds(productionCatalogue)
  const auth = natsAuthConfig({
    dc: ids[0] ?? 'none',
    publicKeys: Object.fromEntries(natsIdentities.map((i) => [i, []])) as unknown as Record<
      NatsIdentity,
      string[]
    >,
    routePassword: 'x',
    routeHosts: ids.map(productionRouteHost),
    limits: jetStreamLimitsFor(ids.length, productionServerStores),
  })
  return [...auth.matchAll(/nats-route:\/\/route:x@nats-([a-z][a-z0-9-]*):6222\b/g)].map(
    (m) => m[1] as string
  )
}

const normaliseConstraint = (c: string): string => c.replace(/\s+/g, '')

/** Service names of the `nats-<dc>` servers; the datacenters of the stack are their suffixes. */
const natsDatacenters = (doc: Doc): string[] =>
  Object.keys(doc.services ?? {}).flatMap((name) => /^nats-([a-z][a-z0-9-]*)$/.exec(name)?.[1] ?? [])

const isNats = (name: string): boolean => /^nats-/.test(name)
/** cloudflared-<dc>: the datacenter's Cloudflare Tunnel connector (not a node service). */
const isCloudflared = (name: string): boolean => /^cloudflared-/.test(name)
const isNodeService = (name: string): boolean => !isNats(name) && !isCloudflared(name)
/** The datacenter of a per-datacenter service (nats-<dc>, web-<dc>, cloudflared-<dc>), else undefined. */
const datacenterOf = (name: string): string | undefined =>
  /^(?:nats|web|cloudflared)-([a-z][a-z0-9-]*)$/.exec(name)?.[1]
/** The backend service a stack service runs: web-<dc> runs web. */
const backendOf = (name: string): string => (/^web-/.test(name) ? 'web' : name)

const listOf = (value: unknown): any[] => (Array.isArray(value) ? value : [])
const rollbackOrder = (deploy: Doc): string | undefined => deploy.rollback_config?.order
const namesOf = (value: unknown): string[] =>
  Array.isArray(value) ? value.map((v) => (typeof v === 'string' ? v : v?.source)) : Object.keys(value ?? {})

// ---------------------------------------------------------------------------------------------------------
// The invariant checkers

/** Problems of one service, each "<service>: <invariant>: <detail>". */
function serviceProblems(name: string, svc: Doc, doc: Doc, conf: string): string[] {
  const problems: string[] = []
  const fail = (invariant: string, detail: string) => problems.push(`${name}: ${invariant}: ${detail}`)
  const deploy: Doc = svc.deploy ?? {}
  const datacenters = natsDatacenters(doc)

  // Bounded logs: the default json-file driver never rotates, which is how the old server's disk filled up.
  const logging = svc.logging
  if (!logging) fail('logging', 'missing (the default json-file driver keeps logs forever)')
  else {
    if (!['json-file', 'local'].includes(logging.driver))
      fail('logging', `driver must be json-file or local, not ${logging.driver}`)
    if (!logging.options?.['max-size']) fail('logging', 'max-size is not set')
    if (!logging.options?.['max-file']) fail('logging', 'max-file is not set')
  }

  const health = svc.healthcheck
  if (
    !health ||
    health.disable ||
    !Array.isArray(health.test) ||
    !['CMD', 'CMD-SHELL'].includes(health.test[0])
  ) {
    fail('healthcheck', 'missing or disabled (rolling updates are gated on it)')
  } else {
    for (const key of ['interval', 'timeout', 'retries', 'start_period']) {
      if (health[key] === undefined) fail('healthcheck', `${key} is not set`)
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
    if (singleTask && rollbackOrder(deploy) !== 'start-first')
      fail('update_config', 'its rollback_config order must be start-first too')
    if (singleTask && deploy.placement?.max_replicas_per_node !== undefined)
      fail('update_config', 'start-first leaves the new task nowhere under max_replicas_per_node')
    // Health-gated: a new task that never turns healthy must fail the update while it is still monitored,
    // so the monitor window has to reach past the health check's first verdict after start_period.
    const firstVerdictMs = durationMs(health?.start_period) + durationMs(health?.interval)
    if (Number.isFinite(firstVerdictMs) && !(durationMs(update.monitor) >= firstVerdictMs)) {
      fail(
        'update_config',
        `monitor (${update.monitor}) must cover the healthcheck's start_period + interval (${firstVerdictMs} ms)`
      )
    }
  }

  const rollback = deploy.rollback_config
  if (!rollback) fail('rollback_config', 'missing')
  else {
    if (!(rollback.parallelism >= 1)) fail('rollback_config', 'parallelism must be set')
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
  if (!resources.limits?.cpus || !resources.limits?.memory) fail('resources', 'limits need cpus and memory')
  if (!resources.reservations?.cpus || !resources.reservations?.memory)
    fail('resources', 'reservations need cpus and memory')

  if (svc.read_only !== true) fail('read_only', 'the root filesystem must be read-only')
  if (!listOf(svc.volumes).some((v) => v?.type === 'tmpfs'))
    fail('tmpfs', 'needs a tmpfs volume (long syntax, type: tmpfs)')
  if (svc.tmpfs !== undefined)
    fail('tmpfs', 'the short `tmpfs:` key is dropped by docker stack deploy; use volumes')

  // A version tag (or a digest); never latest, never implicit.
  const image = /^(?<repository>[^@]+?)(?::(?<tag>[\w][\w.-]*))?(?<digest>@sha256:[a-f0-9]{64})?$/.exec(
    String(svc.image ?? '')
  )
  const tag = image?.groups?.tag
  if (!svc.image || !image) fail('image', 'missing')
  else if (!image.groups?.digest && !(tag && /^v?\d+\.\d+\.\d+([-+.][\w.-]+)?$/.test(tag))) {
    fail('image', `tag must be a release version, not ${tag ?? '(none, i.e. latest)'}`)
  }

  const placement = deploy.placement ?? {}
  const constraints = listOf(placement.constraints).map(normaliseConstraint)
  if (isNats(name)) {
    const dc = name.slice('nats-'.length)
    if (!constraints.includes(`node.labels.dc==${dc}`))
      fail('placement', `needs the constraint node.labels.dc == ${dc}`)
    if (deploy.replicas !== 1) fail('replicas', 'one nats-server per datacenter service')
  } else if (datacenterOf(name)) {
    // web-<dc> and cloudflared-<dc>: one task, in its own datacenter (its tunnel reaches it by name).
    const dc = datacenterOf(name)!
    if (!constraints.includes(`node.labels.dc==${dc}`))
      fail('placement', `needs the constraint node.labels.dc == ${dc}`)
    if (deploy.replicas !== 1) fail('replicas', `one ${name.slice(0, -dc.length - 1)} per datacenter service`)
  } else {
    if (placement.max_replicas_per_node !== 1) fail('placement', 'max_replicas_per_node must be 1')
    if (constraints.length === 0)
      fail('placement', 'needs a constraint selecting the (dc-labelled) app nodes')
    if (!listOf(placement.preferences).some((p) => p?.spread === 'node.labels.dc')) {
      fail('placement', 'must spread over node.labels.dc')
    }
    if ((deploy.mode ?? 'replicated') !== 'replicated' || deploy.replicas !== datacenters.length) {
      fail('replicas', `must be one per datacenter (${datacenters.length})`)
    }
  }

  // Secrets: declared at the top level, and every *_FILE variable points at a secret this service mounts.
  const topSecrets: Doc = doc.secrets ?? {}
  const mounted = new Set<string>()
  for (const ref of listOf(svc.secrets)) {
    const source = typeof ref === 'string' ? ref : ref?.source
    if (!(source in topSecrets)) fail('secrets', `${source} is not declared in the top-level secrets`)
    mounted.add(typeof ref === 'string' ? ref : (ref?.target ?? source))
  }
  const env: Doc = Array.isArray(svc.environment)
    ? Object.fromEntries(svc.environment.map((e: string) => e.split(/=(.*)/s, 2)))
    : (svc.environment ?? {})
  for (const [key, value] of Object.entries(env)) {
    if (!key.endsWith('_FILE')) continue
    const secret = /^\/run\/secrets\/(.+)$/.exec(String(value))?.[1]
    if (!secret || !mounted.has(secret))
      fail('secrets', `${key} must point at a mounted secret (/run/secrets/<target>)`)
  }

  for (const config of namesOf(svc.configs)) {
    if (!(config in (doc.configs ?? {})))
      fail('configs', `${config} is not declared in the top-level configs`)
  }

  for (const network of namesOf(svc.networks)) {
    if (!(network in (doc.networks ?? {})))
      fail('networks', `${network} is not declared in the top-level networks`)
  }
  if (namesOf(svc.networks).length === 0)
    fail('networks', 'must join the encrypted overlay, not the default network')

  // Published ports bypass the routing mesh: it would forward to a task in any datacenter.
  for (const port of listOf(svc.ports)) {
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
        `must be longer than nats.conf lame_duck_duration (${natsSetting(conf, 'lame_duck_duration')})`
      )
    }
    if (deploy.endpoint_mode !== 'dnsrr') fail('endpoint_mode', 'a cluster member needs dnsrr, not a VIP')
    if (env.SERVER_NAME !== name) fail('environment', `SERVER_NAME must be ${name}`)
    if (env.DC_TAG !== `dc:${dc}`) fail('environment', `DC_TAG must be dc:${dc}`)
    // Its own datacenter's users, permissions and route credentials (`npm run nats-auth`).
    const auth = listOf(svc.secrets).find((r) => typeof r === 'object' && r?.target === '/etc/nats/auth.conf')
    if (auth?.source !== `nats_auth_${dc}`)
      fail('secrets', `must mount its own nats_auth_${dc} at /etc/nats/auth.conf (npm run nats-auth)`)
    if (svc.hostname !== undefined && svc.hostname !== name) fail('hostname', `must be ${name}`)
    // JetStream's store on a named (node-local) volume of this datacenter's own, declared at the top level.
    const storeDir = natsSetting(natsBlock(conf, 'jetstream') ?? '', 'store_dir')
    const store = listOf(svc.volumes).find((v) => v?.type === 'volume' && v.target === storeDir)
    if (!store) fail('volumes', `JetStream needs a persistent volume at its store_dir (${storeDir})`)
    else {
      if (store.source !== `${name}-data`) fail('volumes', `the JetStream volume must be ${name}-data`)
      if (!(store.source in (doc.volumes ?? {})))
        fail('volumes', `${store.source} is not declared in the top-level volumes`)
    }
    // The WebSocket listener's certificate and key are secrets this server mounts.
    const tls = natsBlock(natsBlock(conf, 'websocket') ?? '', 'tls') ?? ''
    for (const key of ['cert_file', 'key_file']) {
      const secret = /^\/run\/secrets\/(.+)$/.exec(natsSetting(tls, key) ?? '')?.[1]
      if (secret && !mounted.has(secret))
        fail('secrets', `nats.conf websocket ${key} needs the secret ${secret} mounted`)
    }
  } else if (isCloudflared(name)) {
    // Outbound only, its token a Docker secret it mounts (never an argument or a variable).
    const command = listOf(svc.command).map(String)
    if (!command.includes('tunnel') || !command.includes('run'))
      fail('command', 'must run `cloudflared tunnel run`')
    const tokenFile = command[command.indexOf('--token-file') + 1] ?? ''
    const secret = /^\/run\/secrets\/(.+)$/.exec(command.includes('--token-file') ? tokenFile : '')?.[1]
    if (!secret || !mounted.has(secret))
      fail('secrets', 'the tunnel token must be a mounted Docker secret (--token-file /run/secrets/<target>)')
    if (command.includes('--token') || Object.keys(env).some((k) => k === 'TUNNEL_TOKEN'))
      fail('secrets', 'the tunnel token must never be an argument or a variable')
  } else {
    if (svc.init !== true) fail('init', 'node services run under init: true')
    // Its own NATS user, never another service's (shared/nats-permissions.ts).
    const seed = /^\/run\/secrets\/(.+)$/.exec(String(env.NATS_NKEY_SEED_FILE ?? ''))?.[1]
    const seedSource = listOf(svc.secrets).find((r) => typeof r === 'object' && r?.target === seed)?.source
    // web-<dc> and the others: the kind of service is the one its command runs.
    const kind = /backend\/([a-z]+)\/service\.ts/.exec(listOf(svc.command).join(' '))?.[1] ?? name
    if (seedSource !== `nats_seed_${kind}`)
      fail('secrets', `NATS_NKEY_SEED_FILE must be its own seed, the secret nats_seed_${kind}`)
    // Health and metrics are on the internal port: probed there, and never published.
    const internalPort = String(env.INTERNAL_HTTP_PORT ?? '')
    if (!/^\d+$/.test(internalPort) || internalPort === String(env.HTTP_PORT))
      fail('environment', 'INTERNAL_HTTP_PORT must be set, apart from HTTP_PORT (health and metrics)')
    else {
      if (health && !health.test?.join(' ').includes(`:${internalPort}/readyz`))
        fail('healthcheck', `must probe /readyz on the internal port ${internalPort}`)
      if (
        listOf(svc.ports).some(
          (p) =>
            String(p?.target ?? p)
              .split(':')
              .at(-1) === internalPort
        )
      )
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
      const onNode = (value: unknown) => String(value ?? '').replaceAll('{{.Node.Hostname}}', dc)
      const firstHost = /^nats:\/\/([^:/,]+)/.exec(onNode(env.NATS_URL))?.[1]
      if (firstHost !== `nats-${dc}`)
        fail('environment', `NATS_URL on a node in ${dc} must name nats-${dc} first`)
      if (onNode(env.DC) !== dc) fail('environment', `DC on a node in ${dc} must be ${dc}`)
    }
    if (
      !listOf(svc.command)
        .join(' ')
        .includes(`backend/${backendOf(name)}/service.ts`)
    ) {
      fail('command', `must run backend/${backendOf(name)}/service.ts`)
    }
  }
  return problems
}

/**
 * Problems of the production catalogue ("catalogue: ..."): it must validate as the edge reads it (every entry
 * with endpoints) and point at public TLS endpoints named after the datacenter.
 */
function catalogueProblems(data: unknown): string[] {
  const problems: string[] = []
  let entries
  try {
    entries = parseReachableCatalogue(data, catalogueFile)
  } catch (error) {
    return [`catalogue: ${(error as Error).message}`]
  }
  for (const dc of entries) {
    const urls = [
      ['web', dc.endpoints.web, 'https:'],
      ['natsWs', dc.endpoints.natsWs, 'wss:'],
    ] as const
    for (const [key, url, protocol] of urls) {
      const parsed = new URL(url)
      if (parsed.protocol !== protocol)
        problems.push(`catalogue: ${dc.id}: endpoints.${key} must be ${protocol}// in production, not ${url}`)
      if (!new RegExp(`(^|[.-])${dc.id}([.-]|$)`).test(parsed.hostname))
        problems.push(`catalogue: ${dc.id}: endpoints.${key} (${url}) must name the datacenter ${dc.id}`)
    }
  }
  return problems
}

/** The ids of a catalogue, also of one that does not validate (whatever entries carry a string id). */
const catalogueIds = (data: unknown): string[] =>
  listOf(data).flatMap((entry) => (typeof entry?.id === 'string' ? [entry.id as string] : []))

/** Every problem of the stack: stack-wide ones ("stack: ...") and those of every service. */
function stackProblems(doc: Doc, conf: string, productionCatalogue: unknown): string[] {
  const problems: string[] = []
  const fail = (invariant: string, detail: string) => problems.push(`stack: ${invariant}: ${detail}`)
  const services: Doc = doc.services ?? {}

  // One set of datacenters: the nats-<dc> services, the routes of nats.conf and the production catalogue.
  const sets: Array<[string, string[]]> = [
    ['stack.yml nats services', natsDatacenters(doc)],
    ['the routes of npm run nats-auth', routedDatacenters(productionCatalogue)],
    [catalogueFile, catalogueIds(productionCatalogue)],
  ]
  for (const [where, ids] of sets) {
    for (const [otherWhere, otherIds] of sets) {
      for (const id of ids) {
        if (!otherIds.includes(id)) fail('datacenters', `${id} is in ${where} but not in ${otherWhere}`)
      }
    }
  }
  problems.push(...catalogueProblems(productionCatalogue))

  for (const service of serviceNames) {
    if (service === 'web') continue // one per datacenter, below
    if (!(service in services)) fail('services', `backend service ${service} is missing`)
  }
  if (natsDatacenters(doc).length === 0) fail('services', 'no nats-<dc> service')
  // Each datacenter: its web service and its tunnel, the only way in from the internet.
  for (const dc of natsDatacenters(doc)) {
    for (const service of [`web-${dc}`, `cloudflared-${dc}`])
      if (!(service in services)) fail('services', `${service} is missing`)
  }
  // Nothing is published: a published port is reachable from the internet around Access (Docker's own
  // iptables rules bypass the host firewall).
  for (const [name, svc] of Object.entries(services)) {
    if (listOf((svc as Doc)?.ports).length > 0)
      fail('ports', `${name} publishes a port: nothing is published, the tunnel is the only way in`)
  }

  const networks: Doc = doc.networks ?? {}
  if (Object.keys(networks).length === 0) fail('networks', 'no overlay network declared')
  for (const [network, spec] of Object.entries(networks)) {
    if (spec?.driver !== 'overlay') fail('networks', `${network} must be an overlay`)
    if (String(spec?.driver_opts?.encrypted) !== 'true') fail('networks', `${network} must be encrypted`)
  }
  // Secrets are created by the operator (`docker secret create <key>_v1 -`), never read from a file of the
  // repository, and carry a version so that a rotation is a new name.
  const secrets: Doc = doc.secrets ?? {}
  for (const [secret, spec] of Object.entries(secrets)) {
    if (spec?.external !== true) fail('secrets', `${secret} must be external (created by the operator)`)
    else if (!new RegExp(`^${secret}_v\\d+$`).test(String(spec?.name ?? '')))
      fail('secrets', `${secret} needs a versioned name (${secret}_v1), rotated by a new one`)
  }

  // Every listener authenticates: accounts and users come from auth.conf, routes present the route
  // password, and the unauthenticated monitoring port listens inside the container only.
  if (!/^\s*include\s+"?auth\.conf"?\s*$/m.test(conf.replace(/#.*$/gm, '')))
    fail('nats.conf', 'must include auth.conf (accounts, users, route credentials)')
  const cluster = natsBlock(conf, 'cluster') ?? ''
  if (
    !/^\s*routes\s*[:=]?\s*\$ROUTES\s*$/m.test(cluster) ||
    natsBlock(cluster, 'authorization') === undefined
  )
    fail('nats.conf', 'cluster routes must authenticate (authorization, routes: $ROUTES from auth.conf)')
  if (!/^127\.0\.0\.1:/.test(natsSetting(conf, 'http') ?? ''))
    fail('nats.conf', 'the monitoring port (http) must listen on 127.0.0.1: it has no authentication')
  if (/no_auth_user/.test(conf.replace(/#.*$/gm, '')))
    fail('nats.conf', 'no_auth_user lets clients in without credentials')
  if (!/^\s*unique_tag\s*[:=]?\s*"dc:"/m.test(conf)) fail('nats.conf', 'jetstream needs unique_tag: "dc:"')
  if (!natsSetting(natsBlock(conf, 'jetstream') ?? '', 'store_dir'))
    fail('nats.conf', 'jetstream needs a store_dir (on the persistent volume)')
  // The edge's WebSocket listener crosses the internet: TLS, never no_tls.
  const websocket = natsBlock(conf, 'websocket')
  if (websocket === undefined) fail('nats.conf', 'no websocket listener (the edge connects over wss://)')
  else {
    if (!natsSetting(websocket, 'listen') && !natsSetting(websocket, 'port'))
      fail('nats.conf', 'the websocket listener needs listen (or port)')
    const tls = natsBlock(websocket, 'tls')
    if (tls === undefined || /^\s*no_tls\s*[:=]?\s*true/m.test(websocket))
      fail('nats.conf', 'the websocket listener needs tls { cert_file, key_file }')
    else {
      for (const key of ['cert_file', 'key_file']) {
        if (!/^\/run\/secrets\/./.test(natsSetting(tls, key) ?? ''))
          fail('nats.conf', `websocket tls ${key} must be a Docker secret (/run/secrets/...)`)
      }
    }
  }
  if (!/^\s*server_tags\s*[:=]?\s*\[\s*\$DC_TAG\s*\]/m.test(conf))
    fail('nats.conf', 'server_tags must be [$DC_TAG]')
  for (const key of ['ping_interval', 'ping_max', 'lame_duck_duration']) {
    if (natsSetting(conf, key) === undefined) fail('nats.conf', `${key} is not set`)
  }

  for (const [name, svc] of Object.entries(services)) problems.push(...serviceProblems(name, svc, doc, conf))
  return problems
}

type Instruction = { keyword: string; args: string }

/** The Dockerfile's instructions (continuations joined, comments dropped). */
const dockerInstructions = (text: string): Instruction[] =>
  text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/)
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') }
    })

/** The instructions of the last (runtime) stage. */
function runtimeStage(instructions: Instruction[]): Instruction[] {
  const lastFrom = instructions.findLastIndex((i) => i.keyword === 'FROM')
  return instructions.slice(lastFrom + 1)
}

/** Problems of the Dockerfile, parsed instruction by instruction. */
function dockerfileProblems(text: string): string[] {
  const instructions = dockerInstructions(text)
  const problems: string[] = []
  const froms = instructions.filter((i) => i.keyword === 'FROM')
  if (froms.length < 2) problems.push('Dockerfile: FROM: multi-stage build expected (deps and runtime)')

  const stages = new Set<string>()
  for (const from of froms) {
    const [image = '', , alias] = from.args.split(/\s+/).filter((a) => !a.startsWith('--'))
    if (!stages.has(image)) {
      const tag = /^[^@]+?:([\w][\w.-]*)(@sha256:[a-f0-9]{64})?$/.exec(image)?.[1]
      if (!/@sha256:/.test(image) && (!tag || tag === 'latest' || !/\d/.test(tag))) {
        problems.push(`Dockerfile: FROM: ${image} must be pinned to a version tag, not latest`)
      }
    }
    if (alias) stages.add(alias)
  }

  if (!instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.args))) {
    problems.push('Dockerfile: RUN: npm ci --omit=dev expected')
  }

  const runtime = runtimeStage(instructions)
  const user = runtime.filter((i) => i.keyword === 'USER').at(-1)?.args
  if (!user || /^(root|0)(:|$)/.test(user))
    problems.push('Dockerfile: USER: the runtime stage must run as a non-root user')
  const health = runtime.filter((i) => i.keyword === 'HEALTHCHECK').at(-1)?.args
  if (!health || /^NONE$/i.test(health)) problems.push('Dockerfile: HEALTHCHECK: the runtime stage needs one')
  else if (!health.includes('/readyz')) problems.push('Dockerfile: HEALTHCHECK: must probe /readyz')
  else if (!health.includes('INTERNAL_HTTP_PORT'))
    problems.push('Dockerfile: HEALTHCHECK: must probe the internal port (INTERNAL_HTTP_PORT)')
  if (!runtime.some((i) => i.keyword === 'ENV' && /\bNODE_ENV=production\b/.test(i.args))) {
    problems.push('Dockerfile: ENV: NODE_ENV=production expected in the runtime stage')
  }
  // Signals: the exec form runs node (or an init) as the container's process; the shell form would make
  // /bin/sh PID 1, which does not forward SIGTERM, and Swarm would SIGKILL every task after its grace period.
  for (const keyword of ['ENTRYPOINT', 'CMD']) {
    const args = runtime.filter((i) => i.keyword === keyword).at(-1)?.args
    if (args !== undefined && !/^\[.*\]$/.test(args))
      problems.push(`Dockerfile: ${keyword}: must use the exec form (["node", ...]) so SIGTERM reaches node`)
  }
  const stopSignal = runtime.filter((i) => i.keyword === 'STOPSIGNAL').at(-1)?.args
  if (stopSignal !== undefined && stopSignal !== 'SIGTERM')
    problems.push(`Dockerfile: STOPSIGNAL: the runtime drains on SIGTERM, not ${stopSignal}`)
  return problems
}

/** The runtime stage's ENTRYPOINT + CMD in exec form, e.g. ["node", "backend/web/service.ts"]. */
function dockerCommand(text: string): string[] {
  const runtime = runtimeStage(dockerInstructions(text))
  const execForm = (keyword: string): string[] => {
    const args = runtime.filter((i) => i.keyword === keyword).at(-1)?.args
    try {
      return args ? (JSON.parse(args) as string[]) : []
    } catch {
      return []
    }
  }
  return [...execForm('ENTRYPOINT'), ...execForm('CMD')]
}

/**
 * Graceful stop end to end: Swarm sends SIGTERM (or the nats services' SIGUSR2) to PID 1; PID 1 must be an init
 * that forwards it (tini in the image, or `init: true` on every node service) and node must handle it. The
 * runtime registers the handler (backend/runtime/service.ts: stop being ready, drain, exit 0 within
 * SHUTDOWN_GRACE_MS, proven by test/backend/runtime.test.ts "on SIGTERM finishes in-flight work..."), and every
 * backend service runs under it through runService.
 */
function signalProblems(
  dockerfileText: string,
  doc: Doc,
  readSource: (path: string) => string | undefined
): string[] {
  const problems: string[] = []
  const command = dockerCommand(dockerfileText)
  const imageHasInit = /(^|\/)(tini|dumb-init)$/.test(command[0] ?? '')
  if (!imageHasInit) {
    for (const [name, svc] of Object.entries(doc.services ?? {})) {
      if (isNodeService(name) && (svc as Doc).init !== true)
        problems.push(`signals: ${name}: the image has no tini, so the service needs init: true`)
    }
  }
  const runtime = readSource('backend/runtime/service.ts') ?? ''
  if (!/process\.(once|on)\(\s*['"]SIGTERM['"]/.test(runtime))
    problems.push('signals: backend/runtime/service.ts registers no SIGTERM handler')
  const entries = [
    ...serviceNames.map((name) => `backend/${name}/service.ts`),
    ...command.filter((arg) => arg.endsWith('.ts')),
  ]
  for (const entry of new Set(entries)) {
    const source = readSource(entry)
    if (source === undefined) problems.push(`signals: ${entry} does not exist`)
    else if (!/\brunService\(/.test(source))
      problems.push(`signals: ${entry} does not run under runService (no graceful SIGTERM)`)
  }
  return problems
}

const readSourceFile = (path: string): string | undefined =>
  existsSync(root + path) ? readRepoFile(path) : undefined

/** Problems of .dockerignore: present, keeps local and generated files out, lets the image's sources in. */
function dockerignoreProblems(text: string | undefined): string[] {
  if (text === undefined)
    return ['.dockerignore: missing (the whole directory, .git included, would be sent)']
  const problems: string[] = []
  const lines = text.split(/\r?\n/).map((l) => l.trim())
  for (const entry of ['node_modules', '.local', '.wrangler', '.git', '*.log']) {
    if (!lines.some((l) => l === entry || l === `**/${entry}`))
      problems.push(`.dockerignore: must exclude ${entry} (as ${entry} or **/${entry})`)
  }
  for (const entry of ['test', 'bench', 'edge', 'docs']) {
    if (!lines.includes(entry)) problems.push(`.dockerignore: must exclude ${entry}`)
  }
  for (const needed of ['package.json', 'package-lock.json', 'shared', 'backend']) {
    if (lines.some((l) => l === needed || l === `${needed}/` || l === `**/${needed}`))
      problems.push(`.dockerignore: must not exclude ${needed} (the image needs it)`)
  }
  return problems
}

// ---------------------------------------------------------------------------------------------------------
// The real files

describe('stack.yml', () => {
  const services = Object.keys(stack.services ?? {})

  it('has no problems at all', () => {
    expect(stackProblems(stack, natsConf, catalogue)).toEqual([])
  })

  it.each(services)('%s keeps every service invariant', (name) => {
    expect(stackProblems(stack, natsConf, catalogue).filter((p) => p.startsWith(`${name}: `))).toEqual([])
  })

  it('runs every backend service, and per datacenter one nats server, one web and one tunnel', () => {
    const perDc = ['fra1', 'ams3', 'lon1'].flatMap((dc) => [`nats-${dc}`, `web-${dc}`, `cloudflared-${dc}`])
    expect(services).toEqual(expect.arrayContaining([...serviceNames.filter((n) => n !== 'web'), ...perDc]))
    expect(natsDatacenters(stack)).toEqual(['fra1', 'ams3', 'lon1'])
    expect(routedDatacenters(catalogue)).toEqual(natsDatacenters(stack))
  })

  it('agrees with nats.conf and the production catalogue on the datacenters (DigitalOcean region ids)', () => {
    expect(catalogueIds(catalogue)).toEqual(natsDatacenters(stack))
    const entries = parseReachableCatalogue(catalogue, catalogueFile)
    expect(entries.map((dc) => [dc.id, dc.lat, dc.lon])).toEqual([
      ['fra1', 50.11, 8.68],
      ['ams3', 52.37, 4.9],
      ['lon1', 51.51, -0.13],
    ])
    expect(Object.keys(stack.volumes)).toEqual(natsDatacenters(stack).map((dc) => `nats-${dc}-data`))
  })

  it('refuses to resolve without a release version (no silent latest)', () => {
    expect(() => loadStack(stackText, {})).toThrow(/VTTA_VERSION/)
  })

  it('refuses to resolve without the GitHub App id (the release service would not start)', () => {
    expect(() => loadStack(stackText, { VTTA_VERSION: '0.1.0' })).toThrow(/GITHUB_APP_ID/)
  })

  it.runIf(hasDockerCli)(
    'is accepted by docker stack config, and the resolved stack keeps the invariants',
    () => {
      const resolved = execFileSync('docker', ['stack', 'config', '-c', 'stack.yml'], {
        cwd: root,
        env: { ...process.env, ...deployEnv },
        encoding: 'utf8',
        timeout: 30_000,
      })
      const doc = parse(resolved) as Doc
      expect(doc.services['web-fra1'].image).toMatch(/:0\.1\.0$/)
      expect(doc.services['web-fra1'].environment.NATS_URL).toBe('nats://nats-{{.Node.Hostname}}:4222')
      // Docker's own reading of anchors and merges agrees with this file's.
      expect(stackProblems(doc, natsConf, catalogue)).toEqual([])
    }
  )

  it.runIf(hasDockerCli)('is refused by docker stack config without VTTA_VERSION', () => {
    const env = { ...process.env }
    delete env.VTTA_VERSION
    expect(() =>
      execFileSync('docker', ['stack', 'config', '-c', 'stack.yml'], {
        cwd: root,
        env,
        stdio: 'pipe',
        timeout: 30_000,
      })
    ).toThrow(/VTTA_VERSION/)
  })
})

// hadolint is in neither Debian bookworm nor npm (the npm package `hadolint` is an unofficial wrapper that
// downloads the binary from GitHub at run time), so the Dockerfile is checked by parsing it here.
describe('Dockerfile and .dockerignore', () => {
  it('Dockerfile has no problems', () => {
    expect(dockerfileProblems(dockerfile)).toEqual([])
  })

  it('.dockerignore keeps local and generated files out of the build context', () => {
    expect(dockerignoreProblems(dockerignore)).toEqual([])
  })

  it('stops gracefully: exec-form node under an init, and a runtime that drains on SIGTERM', () => {
    expect(dockerCommand(dockerfile)).toEqual(['node', 'backend/web/service.ts'])
    expect(signalProblems(dockerfile, stack, readSourceFile)).toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------------------
// The checkers can fail

/** What a mutation may break: a copy of the stack, and of deploy/nats.conf and the production catalogue. */
type Files = { conf: string; catalogue: any }
type Mutation = { description: string; mutate: (doc: Doc, files: Files) => void; expected: RegExp }

const mutations: Mutation[] = [
  {
    description: 'web has no logging',
    mutate: (d) => delete d.services['web-fra1'].logging,
    expected: /^web-fra1: logging: missing/,
  },
  {
    description: 'images logs without max-file',
    mutate: (d) => delete d.services.images.logging.options['max-file'],
    expected: /^images: logging: max-file/,
  },
  {
    description: 'releases has no healthcheck',
    mutate: (d) => delete d.services.releases.healthcheck,
    expected: /^releases: healthcheck:/,
  },
  {
    description: 'notifier pauses on a failed update',
    mutate: (d) => (d.services.notifier.deploy.update_config.failure_action = 'pause'),
    expected: /^notifier: update_config: failure_action/,
  },
  {
    description: 'web updates stop-first',
    mutate: (d) => (d.services['web-fra1'].deploy.update_config.order = 'stop-first'),
    expected: /^web-fra1: update_config: order must be start-first/,
  },
  {
    description: 'images updates start-first',
    mutate: (d) => (d.services.images.deploy.update_config.order = 'start-first'),
    expected: /^images: update_config: order must be stop-first/,
  },
  {
    description: 'web-ams3 keeps max_replicas_per_node with start-first',
    mutate: (d) => (d.services['web-ams3'].deploy.placement.max_replicas_per_node = 1),
    expected: /^web-ams3: update_config: start-first leaves/,
  },
  {
    description: 'images updates two at a time',
    mutate: (d) => (d.services.images.deploy.update_config.parallelism = 2),
    expected: /^images: update_config: parallelism/,
  },
  {
    description: 'web has no explicit monitor',
    mutate: (d) => delete d.services['web-fra1'].deploy.update_config.monitor,
    expected: /^web-fra1: update_config: monitor/,
  },
  {
    description: 'releases has no rollback_config',
    mutate: (d) => delete d.services.releases.deploy.rollback_config,
    expected: /^releases: rollback_config: missing/,
  },
  {
    description: 'notifier has no restart_policy',
    mutate: (d) => delete d.services.notifier.deploy.restart_policy,
    expected: /^notifier: restart_policy: missing/,
  },
  {
    description: 'images has no reservations',
    mutate: (d) => delete d.services.images.deploy.resources.reservations,
    expected: /^images: resources: reservations/,
  },
  {
    description: 'web is writable',
    mutate: (d) => delete d.services['web-fra1'].read_only,
    expected: /^web-fra1: read_only:/,
  },
  {
    description: 'nats-ams3 has no tmpfs',
    mutate: (d) => (d.services['nats-ams3'].volumes = []),
    expected: /^nats-ams3: tmpfs:/,
  },
  {
    description: 'images runs latest',
    mutate: (d) => (d.services.images.image = 'ghcr.io/vtta/backend:latest'),
    expected: /^images: image: .*latest/,
  },
  {
    description: 'images has no tag',
    mutate: (d) => (d.services.images.image = 'ghcr.io/vtta/backend'),
    expected: /^images: image:/,
  },
  {
    description: 'images may run twice on one node',
    mutate: (d) => delete d.services.images.deploy.placement.max_replicas_per_node,
    expected: /^images: placement: max_replicas_per_node/,
  },
  {
    description: 'nats-lon1 may run in any datacenter',
    mutate: (d) => (d.services['nats-lon1'].deploy.placement.constraints = ['node.labels.nats == true']),
    expected: /^nats-lon1: placement: .*node\.labels\.dc == lon1/,
  },
  {
    description: 'notifier references an undeclared secret',
    mutate: (d) => d.services.notifier.secrets.push({ source: 'admin_token', target: 'admin_token' }),
    expected: /^notifier: secrets: admin_token/,
  },
  {
    description: 'a *_FILE variable points at no mounted secret',
    mutate: (d) => (d.services.images.environment.ADMIN_TOKEN_FILE = '/run/secrets/admin_token'),
    expected: /^images: secrets: ADMIN_TOKEN_FILE/,
  },
  {
    description: 'images publishes its internal port (metrics)',
    mutate: (d) =>
      (d.services.images.ports = [{ target: 9090, published: 9090, protocol: 'tcp', mode: 'host' }]),
    expected: /^images: ports: the internal port 9090 \(health, metrics\) must never be published/,
  },
  {
    description: 'releases probes readiness on the public port',
    mutate: (d) =>
      (d.services.releases.healthcheck = {
        ...d.services.releases.healthcheck,
        test: d.services.releases.healthcheck.test.map((t: string) => t.replace(':9090/', ':8080/')),
      }),
    expected: /^releases: healthcheck: must probe \/readyz on the internal port 9090/,
  },
  {
    description: 'notifier serves metrics on its public port',
    mutate: (d) => (d.services.notifier.environment.INTERNAL_HTTP_PORT = '8080'),
    expected: /^notifier: environment: INTERNAL_HTTP_PORT must be set, apart from HTTP_PORT/,
  },
  {
    description: 'the overlay is not encrypted',
    mutate: (d) => delete d.networks.backend.driver_opts,
    expected: /^stack: networks: backend must be encrypted/,
  },
  {
    description: 'web-fra1 publishes its port',
    mutate: (d) => (d.services['web-fra1'].ports = [{ target: 8080, published: 8080, mode: 'host' }]),
    expected: /^stack: ports: web-fra1 publishes a port: nothing is published/,
  },
  {
    description: 'nats-ams3 publishes its WebSocket port again',
    mutate: (d) => (d.services['nats-ams3'].ports = [{ target: 8443, published: 443, mode: 'host' }]),
    expected: /^stack: ports: nats-ams3 publishes a port/,
  },
  {
    description: 'a datacenter has no tunnel',
    mutate: (d) => delete d.services['cloudflared-lon1'],
    expected: /^stack: services: cloudflared-lon1 is missing/,
  },
  {
    description: 'the tunnel token is an argument',
    mutate: (d) => (d.services['cloudflared-fra1'].command = ['tunnel', 'run', '--token', 'eyJh']),
    expected: /^cloudflared-fra1: secrets: the tunnel token must be a mounted Docker secret/,
  },
  {
    description: "a datacenter's web runs elsewhere",
    mutate: (d) => (d.services['web-ams3'].deploy.placement.constraints = ['node.labels.role == app']),
    expected: /^web-ams3: placement: needs the constraint node\.labels\.dc == ams3/,
  },
  {
    description: 'nats-fra1 stops with SIGTERM',
    mutate: (d) => delete d.services['nats-fra1'].stop_signal,
    expected: /^nats-fra1: stop_signal:/,
  },
  {
    description: 'nats-ams3 is killed before its lame-duck period ends',
    mutate: (d) => (d.services['nats-ams3'].stop_grace_period = '30s'),
    expected: /^nats-ams3: stop_grace_period: .*lame_duck_duration/,
  },
  {
    description: 'releases talks to a fixed datacenter',
    mutate: (d) => (d.services.releases.environment.NATS_URL = 'nats://nats-fra1:4222'),
    expected: /^releases: environment: NATS_URL on a node in ams3/,
  },
  {
    description: 'a backend service is missing',
    mutate: (d) => delete d.services.notifier,
    expected: /^stack: services: backend service notifier is missing/,
  },
  {
    description: 'a new service forgets everything',
    mutate: (d) =>
      (d.services.newcomer = {
        image: 'ghcr.io/vtta/backend:0.1.0',
        command: ['backend/newcomer/service.ts'],
      }),
    expected: /^newcomer: logging: missing/,
  },
  // The datacenters: stack.yml, nats.conf and the production catalogue name the same set.
  {
    description: 'the catalogue has a datacenter without a nats server',
    mutate: (_d, f) =>
      f.catalogue.push({
        id: 'nyc3',
        name: 'New York',
        lat: 40.71,
        lon: -74.01,
        endpoints: { web: 'https://dc-nyc3.vtta.io', natsWs: 'wss://nats-nyc3.vtta.io' },
      }),
    expected: /^stack: datacenters: nyc3 is in deploy\/datacenters\.production\.json but not in stack\.yml/,
  },
  {
    description: "nats-ams3 mounts another datacenter's users",
    mutate: (d) =>
      (d.services['nats-ams3'].secrets = d.services['nats-ams3'].secrets.map((r: Doc) =>
        r.target === '/etc/nats/auth.conf' ? { ...r, source: 'nats_auth_fra1' } : r
      )),
    expected: /^nats-ams3: secrets: must mount its own nats_auth_ams3 at \/etc\/nats\/auth\.conf/,
  },
  {
    description: "web connects to NATS with the images service's seed",
    mutate: (d) =>
      (d.services['web-fra1'].secrets = d.services['web-fra1'].secrets.map((r: Doc) =>
        r.target === 'nats_seed' ? { ...r, source: 'nats_seed_images' } : r
      )),
    expected: /^web-fra1: secrets: NATS_NKEY_SEED_FILE must be its own seed, the secret nats_seed_web/,
  },
  {
    description: 'nats.conf forgets its users',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^include auth\.conf$/m, '')),
    expected: /^stack: nats\.conf: must include auth\.conf/,
  },
  {
    description: 'the cluster accepts routes without credentials',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^\s*authorization \{ user: route.*$/m, '')),
    expected: /^stack: nats\.conf: cluster routes must authenticate/,
  },
  {
    description: 'the monitoring port listens on every interface',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^http: 127\.0\.0\.1:8222$/m, 'http: 0.0.0.0:8222')),
    expected: /^stack: nats\.conf: the monitoring port \(http\) must listen on 127\.0\.0\.1/,
  },
  {
    description: 'WebSocket clients get in without credentials',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^websocket \{$/m, '$&\n  no_auth_user: anyone')),
    expected: /^stack: nats\.conf: no_auth_user lets clients in without credentials/,
  },
  {
    description: 'a nats server has no catalogue entry (still on the old id)',
    mutate: (_d, f) => (f.catalogue[0].id = 'fra'),
    expected: /^stack: datacenters: fra1 is in stack\.yml nats services but not in deploy\/datacenters/,
  },
  {
    description: 'a catalogue entry misses a field',
    mutate: (_d, f) => delete f.catalogue[1].lat,
    expected: /^catalogue: deploy\/datacenters\.production\.json: \[1\]\.lat:/,
  },
  {
    description: 'a catalogue entry has no endpoints',
    mutate: (_d, f) => delete f.catalogue[2].endpoints,
    expected: /^catalogue: .*\[2\]\.endpoints: required/,
  },
  {
    description: 'a catalogue entry points at a plain-HTTP local address',
    mutate: (_d, f) => (f.catalogue[0].endpoints.web = 'http://127.0.1.1:8080'),
    expected: /^catalogue: fra1: endpoints\.web must be https:/,
  },
  {
    description: "a catalogue entry points at another datacenter's NATS",
    mutate: (_d, f) => (f.catalogue[1].endpoints.natsWs = 'wss://nats-fra1.vtta.io'),
    expected: /^catalogue: ams3: endpoints\.natsWs .* must name the datacenter ams3/,
  },
  // Secrets, volumes, the WebSocket listener, health-gated updates.
  {
    description: 'a secret is read from a file of the repository',
    mutate: (d) => (d.secrets.discord_webhook_url = { file: './discord_webhook_url.txt' }),
    expected: /^stack: secrets: discord_webhook_url must be external/,
  },
  {
    description: 'a secret has no version in its name',
    mutate: (d) => (d.secrets.discord_webhook_url.name = 'discord_webhook_url'),
    expected: /^stack: secrets: discord_webhook_url needs a versioned name/,
  },
  {
    description: 'nats-ams3 keeps JetStream on the container layer',
    mutate: (d) =>
      (d.services['nats-ams3'].volumes = d.services['nats-ams3'].volumes.filter(
        (v: Doc) => v.type !== 'volume'
      )),
    expected: /^nats-ams3: volumes: JetStream needs a persistent volume at its store_dir \(\/data\)/,
  },
  {
    description: "nats-lon1 uses another datacenter's volume",
    mutate: (d) => (d.services['nats-lon1'].volumes[0].source = 'nats-fra1-data'),
    expected: /^nats-lon1: volumes: the JetStream volume must be nats-lon1-data/,
  },
  {
    description: 'a nats volume is not declared',
    mutate: (d) => delete d.volumes['nats-fra1-data'],
    expected: /^nats-fra1: volumes: nats-fra1-data is not declared/,
  },
  {
    description: 'JetStream has no unique_tag',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^\s*unique_tag:.*$/m, '')),
    expected: /^stack: nats\.conf: jetstream needs unique_tag/,
  },
  {
    description: 'nats-fra1 is tagged with another datacenter',
    mutate: (d) => (d.services['nats-fra1'].environment.DC_TAG = 'dc:ams3'),
    expected: /^nats-fra1: environment: DC_TAG must be dc:fra1/,
  },
  {
    description: 'the WebSocket listener has no TLS',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^\s*tls \{[^}]*\}\n/m, '  no_tls: true\n')),
    expected: /^stack: nats\.conf: the websocket listener needs tls/,
  },
  {
    description: 'there is no WebSocket listener',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^websocket \{[\s\S]*$/m, '')),
    expected: /^stack: nats\.conf: no websocket listener/,
  },
  {
    description: 'nats-ams3 does not mount the WebSocket key',
    mutate: (d) =>
      (d.services['nats-ams3'].secrets = d.services['nats-ams3'].secrets.filter(
        (ref: Doc) => ref.source !== 'nats_ws_tls_key'
      )),
    expected: /^nats-ams3: secrets: nats\.conf websocket key_file needs the secret nats_ws_tls_key/,
  },
  {
    description: "web's update moves on before its first health verdict",
    mutate: (d) => (d.services['web-fra1'].deploy.update_config.monitor = '15s'),
    expected:
      /^web-fra1: update_config: monitor \(15s\) must cover the healthcheck's start_period \+ interval/,
  },
  {
    description: 'nats-lon1 runs latest',
    mutate: (d) => (d.services['nats-lon1'].image = 'nats:latest'),
    expected: /^nats-lon1: image: .*latest/,
  },
]

describe('the stack invariant checker', () => {
  it.each(mutations)('reports it when $description', ({ mutate, expected }) => {
    const broken = copyOf(stack)
    const files: Files = { conf: natsConf, catalogue: JSON.parse(JSON.stringify(catalogue)) }
    mutate(broken, files)
    // The mutation must have changed something (a regex that no longer matches would test nothing).
    expect([broken, files.conf, files.catalogue]).not.toEqual([stack, natsConf, catalogue])
    expect(stackProblems(broken, files.conf, files.catalogue)).toContainEqual(expect.stringMatching(expected))
  })

  it('names every invariant a service without any of them breaks', () => {
    const broken = copyOf(stack)
    broken.services.newcomer = {
      image: 'ghcr.io/vtta/backend:0.1.0',
      command: ['backend/newcomer/service.ts'],
    }
    const invariants = new Set(
      stackProblems(broken, natsConf, catalogue)
        .filter((p) => p.startsWith('newcomer: '))
        .map((p) => p.split(': ')[1])
    )
    expect([...invariants].sort()).toEqual(
      [
        'environment',
        'healthcheck',
        'init',
        'logging',
        'networks',
        'placement',
        'read_only',
        'replicas',
        'resources',
        'restart_policy',
        'rollback_config',
        'secrets',
        'stop_grace_period',
        'tmpfs',
        'update_config',
      ].sort()
    )
  })

  it('reports a lame-duck period that the nats grace period does not cover', () => {
    const longerLameDuck = natsConf.replace(/^(\s*lame_duck_duration:).*$/m, '$1 "90s"')
    expect(stackProblems(stack, longerLameDuck, catalogue)).toContainEqual(
      expect.stringMatching(/^nats-fra1: stop_grace_period:/)
    )
  })
})

describe('the Dockerfile checker', () => {
  const cases: Array<{ description: string; edit: (text: string) => string; expected: RegExp }> = [
    {
      description: 'a single stage',
      edit: (t) => t.replace(/^FROM .* AS deps$/m, '').replace(/^COPY --from=deps.*$/m, ''),
      expected: /multi-stage/,
    },
    {
      description: 'a latest base image',
      edit: (t) => t.replace(/^FROM node:\S+ AS runtime$/m, 'FROM node:latest AS runtime'),
      expected: /latest/,
    },
    {
      description: 'an untagged base image',
      edit: (t) => t.replace(/^FROM node:\S+ AS deps$/m, 'FROM node AS deps'),
      expected: /FROM: node must be pinned/,
    },
    {
      description: 'npm ci with dev dependencies',
      edit: (t) => t.replace('--omit=dev', ''),
      expected: /npm ci --omit=dev/,
    },
    { description: 'no USER', edit: (t) => t.replace(/^USER .*$/m, ''), expected: /USER/ },
    { description: 'USER root', edit: (t) => t.replace(/^USER .*$/m, 'USER root'), expected: /USER/ },
    {
      description: 'no HEALTHCHECK',
      edit: (t) => t.replace(/^HEALTHCHECK[^\n]*\\\n[^\n]*$/m, ''),
      expected: /HEALTHCHECK/,
    },
  ]

  cases.push(
    {
      description: 'a shell-form ENTRYPOINT (sh as PID 1 swallows SIGTERM)',
      edit: (t) => t.replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT node'),
      expected: /^Dockerfile: ENTRYPOINT: must use the exec form/,
    },
    {
      description: 'a shell-form CMD',
      edit: (t) => t.replace(/^CMD .*$/m, 'CMD node backend/web/service.ts'),
      expected: /^Dockerfile: CMD: must use the exec form/,
    },
    {
      description: 'a stop signal the runtime does not handle',
      edit: (t) => t.replace(/^STOPSIGNAL .*$/m, 'STOPSIGNAL SIGQUIT'),
      expected: /^Dockerfile: STOPSIGNAL: the runtime drains on SIGTERM, not SIGQUIT/,
    }
  )

  it.each(cases)('reports $description', ({ edit, expected }) => {
    const edited = edit(dockerfile)
    expect(edited).not.toBe(dockerfile)
    expect(dockerfileProblems(edited)).toContainEqual(expect.stringMatching(expected))
  })
})

describe('the signal-handling checker', () => {
  it('accepts tini in the image instead of init: true', () => {
    const withTini = dockerfile.replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT ["/usr/bin/tini", "--", "node"]')
    const noInit = copyOf(stack)
    for (const name of Object.keys(noInit.services)) delete noInit.services[name].init
    expect(signalProblems(withTini, noInit, readSourceFile)).toEqual([])
  })

  it('reports a node service without an init when the image has none', () => {
    const noInit = copyOf(stack)
    delete noInit.services.images.init
    expect(signalProblems(dockerfile, noInit, readSourceFile)).toEqual([
      'signals: images: the image has no tini, so the service needs init: true',
    ])
  })

  it('reports a runtime that no longer handles SIGTERM', () => {
    const read = (path: string) =>
      path === 'backend/runtime/service.ts'
        ? readSourceFile(path)?.replace(/process\.once\('SIGTERM'/g, "process.once('SIGHUP'")
        : readSourceFile(path)
    expect(signalProblems(dockerfile, stack, read)).toEqual([
      'signals: backend/runtime/service.ts registers no SIGTERM handler',
    ])
  })

  it('reports a service that does not run under runService, or a missing entry', () => {
    const read = (path: string) =>
      path === 'backend/notifier/service.ts'
        ? 'process.stdin.resume()'
        : path === 'backend/web/service.ts'
          ? undefined
          : readSourceFile(path)
    expect(signalProblems(dockerfile, stack, read)).toEqual([
      'signals: backend/web/service.ts does not exist',
      'signals: backend/notifier/service.ts does not run under runService (no graceful SIGTERM)',
    ])
  })
})

describe('the .dockerignore checker', () => {
  const cases: Array<{ description: string; edit: (text: string) => string | undefined; expected: RegExp }> =
    [
      { description: 'a missing .dockerignore', edit: () => undefined, expected: /^\.dockerignore: missing/ },
      ...['node_modules', '.git', '.local'].map((entry) => ({
        description: `${entry} not excluded`,
        edit: (t: string) => t.replace(new RegExp(`^\\*\\*/${entry.replace('.', '\\.')}$`, 'm'), ''),
        expected: new RegExp(`^\\.dockerignore: must exclude ${entry.replace('.', '\\.')} `),
      })),
      {
        description: 'backend excluded',
        edit: (t) => `${t}\nbackend\n`,
        expected: /^\.dockerignore: must not exclude backend/,
      },
    ]

  it.each(cases)('reports $description', ({ edit, expected }) => {
    const edited = edit(dockerignore ?? '')
    expect(edited).not.toBe(dockerignore)
    expect(dockerignoreProblems(edited)).toContainEqual(expect.stringMatching(expected))
  })
})
