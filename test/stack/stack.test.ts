/**
 * The production deployment: stack.yml (with deploy/nats.conf and the production catalogue
 * deploy/datacenters.production.json), the Dockerfile and .dockerignore. (wrangler.toml: wrangler.test.ts.)
 *
 * The checks themselves live in deploy/check/ (`npm run check:deploy`); they return a list of problems, each
 * starting with the file to fix ("stack.yml: <service>: <invariant>: <detail>"), run over EVERY service of the
 * parsed stack, so a service added later that forgets one fails here. The tables of mutations break a copy of
 * the real files and show that the checks report each break, naming the cause; the last tests run the command.
 */
import { afterAll, describe, it, expect } from 'vitest'
import { parse } from 'yaml'
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { homeRegionServices, serviceNames } from '#shared/services.ts'
import { homeRegion } from '#shared/regions.ts'
import { parseCatalogue, parseReachableCatalogue, type Datacenter } from '#shared/catalogue.ts'
import { deployProblems, readDeployFiles } from '../../deploy/check/index.ts'
import { deployFiles } from '../../deploy/check/files.ts'
import { natsDatacenters } from '../../deploy/check/service.ts'
import {
  loadStack,
  StackFileError,
  validateStack,
  type Service,
  type Stack,
} from '../../deploy/check/stack-file.ts'
import { catalogueFile, catalogueIds, routedDatacenters } from '../../deploy/check/catalogue.ts'
import { dockerCommand, dockerfileProblems } from '../../deploy/check/dockerfile.ts'
import { dockerignoreProblems } from '../../deploy/check/dockerignore.ts'
import { initProblems } from '../../deploy/check/signals.ts'

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

const stackText = readRepoFile('stack.yml')
const stack = loadStack(stackText, deployEnv)
const natsConf = readRepoFile('deploy/nats.conf')
const catalogue: Datacenter[] = parseCatalogue(JSON.parse(readRepoFile(catalogueFile)), catalogueFile)
const dockerfile = readRepoFile('Dockerfile')
const dockerignore = existsSync(root + '.dockerignore') ? readRepoFile('.dockerignore') : undefined

/** Every problem of the deploy files, with this stack, nats.conf and catalogue (the real Dockerfile). */
const problemsWith = (broken: Stack, conf: string, productionCatalogue: unknown): string[] =>
  deployProblems({ stack: broken, natsConf: conf, catalogue: productionCatalogue, dockerfile, dockerignore })

/**
 * Graceful stop end to end: Swarm sends SIGTERM (or the nats services' SIGUSR2) to PID 1; PID 1 must be an init
 * that forwards it (tini in the image, or `init: true` on every node service: deploy/check/signals.ts) and node
 * must handle it. The runtime registers the handler (backend/runtime/service.ts: stop being ready, drain, exit 0
 * within SHUTDOWN_GRACE_MS, proven by test/backend/runtime.test.ts "on SIGTERM finishes in-flight work..."), and
 * every backend service runs under it through runService.
 *
 * The code's part stays here rather than in `npm run check:deploy`: a deploy runs the image of VTTA_VERSION,
 * not the checkout's sources, so an operator's check of the sources would prove nothing about what runs.
 */
function signalProblems(
  dockerfileText: string,
  doc: Stack,
  readSource: (path: string) => string | undefined
): string[] {
  const problems: string[] = initProblems(dockerfileText, doc)
  const command = dockerCommand(dockerfileText)
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

// ---------------------------------------------------------------------------------------------------------
// The real files

describe('stack.yml', () => {
  const services = Object.keys(stack.services)

  it('has no problems at all', () => {
    expect(problemsWith(stack, natsConf, catalogue)).toEqual([])
  })

  it.each(services)('%s keeps every service invariant', (name) => {
    expect(
      problemsWith(stack, natsConf, catalogue).filter((p) => p.startsWith(`stack.yml: ${name}: `))
    ).toEqual([])
  })

  it('runs every backend service, and per datacenter one nats server, one web and one tunnel', () => {
    const datacenters = ['fra1', 'ams3', 'lon1', 'nyc3', 'sfo3', 'sgp1']
    const perDc = datacenters.flatMap((dc) => [`nats-${dc}`, `web-${dc}`, `cloudflared-${dc}`])
    expect(services).toEqual(expect.arrayContaining([...serviceNames.filter((n) => n !== 'web'), ...perDc]))
    expect(natsDatacenters(stack)).toEqual(datacenters)
    // One task of each spread service per datacenter; the release consumers' in the home region only
    // (test/stack/spread.test.ts).
    for (const name of ['images', 'nats-exporter'])
      expect(svc(stack, name).deploy?.replicas, name).toBe(datacenters.length)
    for (const name of homeRegionServices)
      expect(svc(stack, name).deploy?.replicas, name).toBe(homeRegion(catalogue).datacenters.length)
    expect(routedDatacenters(catalogue)).toEqual(natsDatacenters(stack))
  })

  it('runs the nats-exporter once per datacenter, as its own NATS user, reaching its server by name', () => {
    const exporter = svc(stack, 'nats-exporter')
    // Not a nats-<dc> server, nor a platform service (shared/services.ts: never part of /health).
    expect(natsDatacenters(stack)).not.toContain('exporter')
    expect(serviceNames).not.toContain('nats-exporter')
    expect(exporter.command).toEqual(['backend/nats-exporter/service.ts'])
    expect(exporter.deploy?.replicas).toBe(natsDatacenters(stack).length)
    expect(exporter.ports ?? []).toEqual([])
    expect(exporter.environment).toMatchObject({
      NATS_URL: 'nats://nats-{{.Node.Hostname}}:4222',
      NATS_SERVER_NAME: 'nats-{{.Node.Hostname}}',
      INTERNAL_HTTP_PORT: '7777',
      NATS_WS_TLS_URL: 'https://nats-{{.Node.Hostname}}:8443',
    })
    const sources = (exporter.secrets ?? []).map((r) => (typeof r === 'object' ? r.source : r))
    // Its seed and the WebSocket certificate (public), never the certificate's key.
    expect(sources.sort()).toEqual(['nats_seed_nats_exporter', 'nats_ws_tls_cert'])
    expect(stack.secrets.nats_seed_nats_exporter?.name).toBe('nats_seed_nats_exporter_v1')
  })

  it('agrees with nats.conf and the production catalogue on the datacenters (DigitalOcean region ids)', () => {
    expect(catalogueIds(catalogue)).toEqual(natsDatacenters(stack))
    const entries = parseReachableCatalogue(catalogue, catalogueFile)
    expect(entries.map((dc) => [dc.id, dc.lat, dc.lon])).toEqual([
      ['fra1', 50.11, 8.68],
      ['ams3', 52.37, 4.9],
      ['lon1', 51.51, -0.13],
      ['nyc3', 40.71, -74.01],
      ['sfo3', 37.77, -122.42],
      ['sgp1', 1.35, 103.82],
    ])
    // Three regions, Europe holding 3 of the 5 JetStream servers (sfo3 runs none).
    expect(entries.map((dc) => [dc.id, dc.region, dc.jetstream ?? true])).toEqual([
      ['fra1', 'eu', true],
      ['ams3', 'eu', true],
      ['lon1', 'eu', true],
      ['nyc3', 'us', true],
      ['sfo3', 'us', false],
      ['sgp1', 'ap', true],
    ])
    expect(Object.keys(stack.volumes).filter((v) => v.startsWith('nats-'))).toEqual(
      natsDatacenters(stack).map((dc) => `nats-${dc}-data`)
    )
  })

  it('monitors from inside: Prometheus and Alertmanager twice, a node exporter per node, configs from deploy/monitoring', () => {
    const prometheus = svc(stack, 'prometheus')
    const alertmanager = svc(stack, 'alertmanager')
    const nodeExporter = svc(stack, 'node-exporter')
    for (const s of [prometheus, alertmanager]) expect(s.deploy?.replicas).toBe(2)
    expect(nodeExporter.deploy?.mode).toBe('global')
    expect(nodeExporter.hostname).toBe('{{.Node.Hostname}}')
    expect(commandOf(nodeExporter)).toContain('--path.rootfs=/host')
    expect(nodeExporter.volumes).toContainEqual(
      expect.objectContaining({ type: 'bind', source: '/', target: '/host', read_only: true })
    )
    expect(commandOf(prometheus).some((a) => /^--storage\.tsdb\.retention\.size=\d+[KMGT]?B$/.test(a))).toBe(
      true
    )
    expect(commandOf(alertmanager)).toContain('--cluster.peer=tasks.alertmanager:9094')
    // The operator's webhook reaches Alertmanager's config through a Docker template, from a mounted secret.
    expect(stack.configs.alertmanager_yml).toMatchObject({
      file: './deploy/monitoring/alertmanager.yml',
      template_driver: 'golang',
    })
    expect(readRepoFile('deploy/monitoring/alertmanager.yml')).toContain(
      '{{ secret "discord_operator_webhook_url" }}'
    )
    expect(alertmanager.secrets).toContainEqual(
      expect.objectContaining({
        source: 'discord_operator_webhook_url',
        target: 'discord_operator_webhook_url',
      })
    )
    expect(stack.configs.prometheus_yml).toMatchObject({ file: './deploy/monitoring/prometheus.yml' })
    expect(stack.configs.prometheus_alerts).toMatchObject({ file: './deploy/monitoring/alerts.yml' })
    for (const s of [prometheus, alertmanager, nodeExporter]) expect(s.networks).toEqual(['backend'])
  })

  it('refuses to resolve without a release version (no silent latest)', () => {
    expect(() => loadStack(stackText, {})).toThrow(/VTTA_VERSION/)
  })

  it('refuses to resolve without the GitHub App id (the release service would not start)', () => {
    expect(() => loadStack(stackText, { VTTA_VERSION: '0.1.0' })).toThrow(/GITHUB_APP_ID/)
  })

  it('names each field of the wrong kind, as docker would refuse it', () => {
    const wrong = stackText.replace(/^(\s+replicas:) 6$/m, '$1 six').replace(/^(\s+init:) true$/m, '$1 maybe')
    expect(wrong).not.toBe(stackText)
    expect(() => loadStack(wrong, deployEnv)).toThrow(StackFileError)
    expect(() => loadStack(wrong, deployEnv)).toThrow(/services\.images\.deploy\.replicas: /)
    expect(() => loadStack(wrong, deployEnv)).toThrow(/services\.images\.init: /)
  })

  it('reads an interpolated count or flag as docker does, cast to its type', () => {
    const interpolated = stackText
      .replace(/^(\s+replicas:) 6$/m, '$1 ${REPLICAS:-6}')
      .replace(/^(\s+init:) true$/m, '$1 ${INIT:-true}')
    expect(interpolated).not.toBe(stackText)
    const resolved = loadStack(interpolated, deployEnv)
    expect(resolved.services.images?.deploy?.replicas).toBe(6)
    expect(resolved.services.images?.init).toBe(true)
    expect(problemsWith(resolved, natsConf, catalogue)).toEqual([])
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
      const doc = validateStack(parse(resolved))
      expect(doc.services['web-fra1']?.image).toMatch(/:0\.1\.0$/)
      expect(doc.services['web-fra1']?.environment?.NATS_URL).toBe('nats://nats-{{.Node.Hostname}}:4222')
      // Docker's own reading of anchors and merges agrees with this file's.
      expect(problemsWith(doc, natsConf, catalogue)).toEqual([])
    }
  )

  it.runIf(hasDockerCli)('is refused by docker stack config without VTTA_VERSION', () => {
    // Every other required variable set: docker names one missing variable, in no fixed order.
    const env: NodeJS.ProcessEnv = { ...process.env, ...deployEnv }
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
type Files = { conf: string; catalogue: Array<Partial<Datacenter>> }
type Mutation = { description: string; mutate: (stack: Stack, files: Files) => void; expected: RegExp }

/** What a mutation edits; one whose target is no longer in the real file fails instead of testing nothing. */
function present<T>(value: T | null | undefined): T {
  if (value === undefined || value === null) throw new Error('the mutated field is not in the real file')
  return value
}
const svc = (stack: Stack, name: string): Service => present(stack.services[name])
const commandOf = (service: Service): string[] => (Array.isArray(service.command) ? service.command : [])
const deployOf = (stack: Stack, name: string) => present(svc(stack, name).deploy)
const updateOf = (stack: Stack, name: string) => present(deployOf(stack, name).update_config)
const envOf = (stack: Stack, name: string) => present(svc(stack, name).environment)
const secretsOf = (stack: Stack, name: string) => present(svc(stack, name).secrets)
const isVolume = (v: NonNullable<Service['volumes']>[number]) => typeof v === 'object' && v.type === 'volume'

const mutations: Mutation[] = [
  {
    // What stalled the lab's rolling update: web-<dc>'s start-first task found no node with room.
    description: 'the images service reserves so much that web-fra1’s start-first update has no room',
    mutate: (d) =>
      void (present(present(present(svc(d, 'images').deploy).resources).reservations).cpus = '0.9'),
    expected:
      /^stack\.yml: capacity: fra1's node would have 2\.30 CPUs reserved \(with the second task of web-fra1, cloudflared-fra1 during an update\)/,
  },
  {
    description: 'prometheus reserves more memory than a node has',
    mutate: (d) =>
      void (present(present(present(svc(d, 'prometheus').deploy).resources).reservations).memory = '8G'),
    expected: /^stack\.yml: capacity: ams3's node would have \d+\.\d+ GiB reserved/,
  },
  {
    description: 'prometheus runs as root',
    mutate: (d) => void (svc(d, 'prometheus').user = '0:0'),
    expected: /^stack\.yml: prometheus: user: must run as a non-root user/,
  },
  {
    description: 'alertmanager runs one replica only',
    mutate: (d) => void (present(svc(d, 'alertmanager').deploy).replicas = 1),
    expected: /^stack\.yml: alertmanager: replicas: global, or at least 2 replicas/,
  },
  {
    description: 'prometheus may put both replicas on one node',
    mutate: (d) => delete present(present(svc(d, 'prometheus').deploy).placement).max_replicas_per_node,
    expected: /^stack\.yml: prometheus: replicas: global, or at least 2 replicas/,
  },
  {
    description: 'prometheus is published',
    mutate: (d) => void (svc(d, 'prometheus').ports = [{ target: 9090, published: 9090, mode: 'host' }]),
    expected: /^stack\.yml: prometheus: ports: nothing of the monitoring is published/,
  },
  {
    description: 'node-exporter sits behind a VIP',
    mutate: (d) => void (present(svc(d, 'node-exporter').deploy).endpoint_mode = 'vip'),
    expected: /^stack\.yml: node-exporter: endpoint_mode: dnsrr/,
  },
  {
    description: 'alertmanager logs without bounds',
    mutate: (d) => delete svc(d, 'alertmanager').logging,
    expected: /^stack\.yml: alertmanager: logging: missing/,
  },
  {
    description: 'web has no logging',
    mutate: (d) => delete svc(d, 'web-fra1').logging,
    expected: /^stack\.yml: web-fra1: logging: missing/,
  },
  {
    description: 'images logs without max-file',
    mutate: (d) => delete present(svc(d, 'images').logging?.options)['max-file'],
    expected: /^stack\.yml: images: logging: max-file/,
  },
  {
    description: 'releases has no healthcheck',
    mutate: (d) => delete svc(d, 'releases').healthcheck,
    expected: /^stack\.yml: releases: healthcheck:/,
  },
  {
    description: 'notifier pauses on a failed update',
    mutate: (d) => (updateOf(d, 'notifier').failure_action = 'pause'),
    expected: /^stack\.yml: notifier: update_config: failure_action/,
  },
  {
    description: 'web updates stop-first',
    mutate: (d) => (updateOf(d, 'web-fra1').order = 'stop-first'),
    expected: /^stack\.yml: web-fra1: update_config: order must be start-first/,
  },
  {
    description: 'images updates start-first',
    mutate: (d) => (updateOf(d, 'images').order = 'start-first'),
    expected: /^stack\.yml: images: update_config: order must be stop-first/,
  },
  {
    description: 'web-ams3 keeps max_replicas_per_node with start-first',
    mutate: (d) => (present(deployOf(d, 'web-ams3').placement).max_replicas_per_node = 1),
    expected: /^stack\.yml: web-ams3: update_config: start-first leaves/,
  },
  {
    description: 'images updates two at a time',
    mutate: (d) => (updateOf(d, 'images').parallelism = 2),
    expected: /^stack\.yml: images: update_config: parallelism/,
  },
  {
    description: 'web has no explicit monitor',
    mutate: (d) => delete updateOf(d, 'web-fra1').monitor,
    expected: /^stack\.yml: web-fra1: update_config: monitor/,
  },
  {
    description: 'releases has no rollback_config',
    mutate: (d) => delete deployOf(d, 'releases').rollback_config,
    expected: /^stack\.yml: releases: rollback_config: missing/,
  },
  {
    description: 'notifier has no restart_policy',
    mutate: (d) => delete deployOf(d, 'notifier').restart_policy,
    expected: /^stack\.yml: notifier: restart_policy: missing/,
  },
  {
    description: 'images has no reservations',
    mutate: (d) => delete present(deployOf(d, 'images').resources).reservations,
    expected: /^stack\.yml: images: resources: reservations/,
  },
  {
    description: 'web is writable',
    mutate: (d) => delete svc(d, 'web-fra1').read_only,
    expected: /^stack\.yml: web-fra1: read_only:/,
  },
  {
    description: 'nats-ams3 has no tmpfs',
    mutate: (d) => (svc(d, 'nats-ams3').volumes = []),
    expected: /^stack\.yml: nats-ams3: tmpfs:/,
  },
  {
    description: 'images runs latest',
    mutate: (d) => (svc(d, 'images').image = 'ghcr.io/vtta/backend:latest'),
    expected: /^stack\.yml: images: image: .*latest/,
  },
  {
    description: 'images has no tag',
    mutate: (d) => (svc(d, 'images').image = 'ghcr.io/vtta/backend'),
    expected: /^stack\.yml: images: image:/,
  },
  {
    description: 'images may run twice on one node',
    mutate: (d) => delete present(deployOf(d, 'images').placement).max_replicas_per_node,
    expected: /^stack\.yml: images: placement: max_replicas_per_node/,
  },
  {
    description: 'nats-lon1 may run in any datacenter',
    mutate: (d) => (present(deployOf(d, 'nats-lon1').placement).constraints = ['node.labels.nats == true']),
    expected: /^stack\.yml: nats-lon1: placement: .*node\.labels\.dc == lon1/,
  },
  {
    description: 'notifier references an undeclared secret',
    mutate: (d) => secretsOf(d, 'notifier').push({ source: 'admin_token', target: 'admin_token' }),
    expected: /^stack\.yml: notifier: secrets: admin_token/,
  },
  {
    description: 'a *_FILE variable points at no mounted secret',
    mutate: (d) => (envOf(d, 'images').ADMIN_TOKEN_FILE = '/run/secrets/admin_token'),
    expected: /^stack\.yml: images: secrets: ADMIN_TOKEN_FILE/,
  },
  {
    description: 'images publishes its internal port (metrics)',
    mutate: (d) =>
      (svc(d, 'images').ports = [{ target: 9090, published: 9090, protocol: 'tcp', mode: 'host' }]),
    expected:
      /^stack\.yml: images: ports: the internal port 9090 \(health, metrics\) must never be published/,
  },
  {
    description: 'releases probes readiness on the public port',
    mutate: (d) => {
      const health = present(svc(d, 'releases').healthcheck)
      health.test = [health.test ?? []].flat().map((t) => t.replace(':9090/', ':8080/'))
    },
    expected: /^stack\.yml: releases: healthcheck: must probe \/readyz on the internal port 9090/,
  },
  {
    description: 'notifier serves metrics on its public port',
    mutate: (d) => (envOf(d, 'notifier').INTERNAL_HTTP_PORT = '8080'),
    expected: /^stack\.yml: notifier: environment: INTERNAL_HTTP_PORT must be set, apart from HTTP_PORT/,
  },
  {
    description: 'the overlay is not encrypted',
    mutate: (d) => delete present(d.networks.backend).driver_opts,
    expected: /^stack\.yml: networks: backend must be encrypted/,
  },
  {
    description: 'web-fra1 publishes its port',
    mutate: (d) => (svc(d, 'web-fra1').ports = [{ target: 8080, published: 8080, mode: 'host' }]),
    expected: /^stack\.yml: ports: web-fra1 publishes a port: nothing is published/,
  },
  {
    description: 'nats-ams3 publishes its WebSocket port again',
    mutate: (d) => (svc(d, 'nats-ams3').ports = [{ target: 8443, published: 443, mode: 'host' }]),
    expected: /^stack\.yml: ports: nats-ams3 publishes a port/,
  },
  {
    description: 'a datacenter has no tunnel',
    mutate: (d) => delete d.services['cloudflared-lon1'],
    expected: /^stack\.yml: services: cloudflared-lon1 is missing/,
  },
  {
    description: 'the tunnel token is an argument',
    mutate: (d) => (svc(d, 'cloudflared-fra1').command = ['tunnel', 'run', '--token', 'eyJh']),
    expected: /^stack\.yml: cloudflared-fra1: secrets: the tunnel token must be a mounted Docker secret/,
  },
  {
    description: "a datacenter's web runs elsewhere",
    mutate: (d) => (present(deployOf(d, 'web-ams3').placement).constraints = ['node.labels.role == app']),
    expected: /^stack\.yml: web-ams3: placement: needs the constraint node\.labels\.dc == ams3/,
  },
  {
    description: 'nats-fra1 stops with SIGTERM',
    mutate: (d) => delete svc(d, 'nats-fra1').stop_signal,
    expected: /^stack\.yml: nats-fra1: stop_signal:/,
  },
  {
    description: 'nats-ams3 is killed before its lame-duck period ends',
    mutate: (d) => (svc(d, 'nats-ams3').stop_grace_period = '30s'),
    expected: /^stack\.yml: nats-ams3: stop_grace_period: .*lame_duck_duration/,
  },
  {
    description: 'releases talks to a fixed datacenter',
    mutate: (d) => (envOf(d, 'releases').NATS_URL = 'nats://nats-fra1:4222'),
    expected: /^stack\.yml: releases: environment: NATS_URL on a node in ams3/,
  },
  {
    description: 'a backend service is missing',
    mutate: (d) => delete d.services.notifier,
    expected: /^stack\.yml: services: backend service notifier is missing/,
  },
  {
    description: 'a new service forgets everything',
    mutate: (d) =>
      (d.services.newcomer = {
        image: 'ghcr.io/vtta/backend:0.1.0',
        command: ['backend/newcomer/service.ts'],
      }),
    expected: /^stack\.yml: newcomer: logging: missing/,
  },
  // The datacenters: stack.yml, nats.conf and the production catalogue name the same set.
  {
    description: 'the catalogue has a datacenter without a nats server',
    mutate: (_d, f) =>
      f.catalogue.push({
        id: 'blr1',
        name: 'Bangalore',
        region: 'ap',
        // No JetStream: Europe keeps its majority, the missing server is the only problem.
        jetstream: false,
        lat: 12.97,
        lon: 77.59,
        endpoints: { web: 'https://dc-blr1.vtta.io', natsWs: 'wss://nats-blr1.vtta.io' },
      }),
    expected:
      /^stack\.yml: datacenters: blr1 is in deploy\/datacenters\.production\.json but not in stack\.yml/,
  },
  {
    description: "nats-ams3 mounts another datacenter's users",
    mutate: (d) =>
      (svc(d, 'nats-ams3').secrets = secretsOf(d, 'nats-ams3').map((r) =>
        typeof r === 'object' && r.target === '/etc/nats/auth.conf' ? { ...r, source: 'nats_auth_fra1' } : r
      )),
    expected: /^stack\.yml: nats-ams3: secrets: must mount its own nats_auth_ams3 at \/etc\/nats\/auth\.conf/,
  },
  {
    description: "web connects to NATS with the images service's seed",
    mutate: (d) =>
      (svc(d, 'web-fra1').secrets = secretsOf(d, 'web-fra1').map((r) =>
        typeof r === 'object' && r.target === 'nats_seed' ? { ...r, source: 'nats_seed_images' } : r
      )),
    expected:
      /^stack\.yml: web-fra1: secrets: NATS_NKEY_SEED_FILE must be its own seed, the secret nats_seed_web/,
  },
  {
    description: "the nats-exporter connects with the notifier's seed",
    mutate: (d) =>
      (svc(d, 'nats-exporter').secrets = secretsOf(d, 'nats-exporter').map((r) =>
        typeof r === 'object' && r.target === 'nats_seed' ? { ...r, source: 'nats_seed_notifier' } : r
      )),
    expected:
      /^stack\.yml: nats-exporter: secrets: NATS_NKEY_SEED_FILE must be its own seed, the secret nats_seed_nats_exporter/,
  },
  {
    description: 'the nats-exporter publishes its metrics',
    mutate: (d) => (svc(d, 'nats-exporter').ports = [{ target: 7777, published: 7777, mode: 'host' }]),
    expected:
      /^stack\.yml: nats-exporter: ports: the internal port 7777 \(health, metrics\) must never be published/,
  },
  {
    description: 'the nats-exporter asks the same datacenter everywhere',
    mutate: (d) => (envOf(d, 'nats-exporter').NATS_URL = 'nats://nats-fra1:4222'),
    expected: /^stack\.yml: nats-exporter: environment: NATS_URL on a node in ams3 must name nats-ams3 first/,
  },
  {
    description: 'images does not mount the production catalogue (its tasks would not know their region)',
    mutate: (d) => void (svc(d, 'images').configs = []),
    expected:
      /^stack\.yml: images: catalogue: must mount the production catalogue \(a config of \.\/deploy\/datacenters\.production\.json\)/,
  },
  {
    description: 'web-ams3 looks for the catalogue where it is not mounted',
    mutate: (d) => void (envOf(d, 'web-ams3').DATACENTERS_FILE = '/etc/datacenters.json'),
    expected:
      /^stack\.yml: web-ams3: catalogue: DATACENTERS_FILE must name where the catalogue is mounted \(\/etc\/vtta\/datacenters\.json\)/,
  },
  {
    description: 'nats.conf forgets its users',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^include auth\.conf$/m, '')),
    expected: /^deploy\/nats\.conf: must include auth\.conf/,
  },
  {
    description: 'the cluster accepts routes without credentials',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^\s*authorization \{ user: route.*$/m, '')),
    expected: /^deploy\/nats\.conf: cluster routes must authenticate/,
  },
  {
    description: 'the monitoring port listens on every interface',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^http: 127\.0\.0\.1:8222$/m, 'http: 0.0.0.0:8222')),
    expected: /^deploy\/nats\.conf: the monitoring port \(http\) must listen on 127\.0\.0\.1/,
  },
  {
    description: 'WebSocket clients get in without credentials',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^websocket \{$/m, '$&\n  no_auth_user: anyone')),
    expected: /^deploy\/nats\.conf: no_auth_user lets clients in without credentials/,
  },
  {
    description: 'a nats server has no catalogue entry (still on the old id)',
    mutate: (_d, f) => (present(f.catalogue[0]).id = 'fra'),
    expected:
      /^deploy\/datacenters\.production\.json: datacenters: fra1 is in stack\.yml nats services but not in deploy\/datacenters/,
  },
  {
    description: 'a catalogue entry misses a field',
    mutate: (_d, f) => delete present(f.catalogue[1]).lat,
    expected: /^deploy\/datacenters\.production\.json: \[1\]\.lat:/,
  },
  {
    description: 'a catalogue entry has no endpoints',
    mutate: (_d, f) => delete present(f.catalogue[2]).endpoints,
    expected: /^deploy\/datacenters\.production\.json: \[2\]\.endpoints: required/,
  },
  {
    description: 'a catalogue entry points at a plain-HTTP local address',
    mutate: (_d, f) => (present(present(f.catalogue[0]).endpoints).web = 'http://127.0.1.1:8080'),
    expected: /^deploy\/datacenters\.production\.json: fra1: endpoints\.web must be https:/,
  },
  {
    description: "a catalogue entry points at another datacenter's NATS",
    mutate: (_d, f) => (present(present(f.catalogue[1]).endpoints).natsWs = 'wss://nats-fra1.vtta.io'),
    expected:
      /^deploy\/datacenters\.production\.json: ams3: endpoints\.natsWs .* must name the datacenter ams3/,
  },
  // Secrets, volumes, the WebSocket listener, health-gated updates.
  {
    description: 'a secret is read from a file of the repository',
    mutate: (d) => (d.secrets.discord_webhook_url = { file: './discord_webhook_url.txt' }),
    expected: /^stack\.yml: secrets: discord_webhook_url must be external/,
  },
  {
    description: 'a secret has no version in its name',
    mutate: (d) => (present(d.secrets.discord_webhook_url).name = 'discord_webhook_url'),
    expected: /^stack\.yml: secrets: discord_webhook_url needs a versioned name/,
  },
  {
    description: 'nats-ams3 keeps JetStream on the container layer',
    mutate: (d) =>
      (svc(d, 'nats-ams3').volumes = present(svc(d, 'nats-ams3').volumes).filter((v) => !isVolume(v))),
    expected:
      /^stack\.yml: nats-ams3: volumes: JetStream needs a persistent volume at its store_dir \(\/data\)/,
  },
  {
    description: "nats-lon1 uses another datacenter's volume",
    mutate: (d) => {
      const volume = present(svc(d, 'nats-lon1').volumes).find(isVolume)
      if (typeof volume === 'object') volume.source = 'nats-fra1-data'
    },
    expected: /^stack\.yml: nats-lon1: volumes: the JetStream volume must be nats-lon1-data/,
  },
  {
    description: 'a nats volume is not declared',
    mutate: (d) => delete d.volumes['nats-fra1-data'],
    expected: /^stack\.yml: nats-fra1: volumes: nats-fra1-data is not declared/,
  },
  {
    description: 'JetStream has no unique_tag',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^\s*unique_tag:.*$/m, '')),
    expected: /^deploy\/nats\.conf: jetstream needs unique_tag/,
  },
  {
    description: 'nats-fra1 is tagged with another datacenter',
    mutate: (d) => (envOf(d, 'nats-fra1').DC_TAG = 'dc:ams3'),
    expected: /^stack\.yml: nats-fra1: environment: DC_TAG must be dc:fra1/,
  },
  {
    description: 'the WebSocket listener has no TLS',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^\s*tls \{[^}]*\}\n/m, '  no_tls: true\n')),
    expected: /^deploy\/nats\.conf: the websocket listener needs tls/,
  },
  {
    description: 'there is no WebSocket listener',
    mutate: (_d, f) => (f.conf = f.conf.replace(/^websocket \{[\s\S]*$/m, '')),
    expected: /^deploy\/nats\.conf: no websocket listener/,
  },
  {
    description: 'nats-ams3 does not mount the WebSocket key',
    mutate: (d) =>
      (svc(d, 'nats-ams3').secrets = secretsOf(d, 'nats-ams3').filter(
        (ref) => typeof ref !== 'object' || ref.source !== 'nats_ws_tls_key'
      )),
    expected:
      /^stack\.yml: nats-ams3: secrets: nats\.conf websocket key_file needs the secret nats_ws_tls_key/,
  },
  {
    description: "web's update moves on before its first health verdict",
    mutate: (d) => (updateOf(d, 'web-fra1').monitor = '15s'),
    expected:
      /^stack\.yml: web-fra1: update_config: monitor \(15s\) must cover the healthcheck's start_period \+ interval/,
  },
  {
    description: 'nats-lon1 runs latest',
    mutate: (d) => (svc(d, 'nats-lon1').image = 'nats:latest'),
    expected: /^stack\.yml: nats-lon1: image: .*latest/,
  },
  {
    description: 'nats-sgp1 runs nats 2.11, which breaks the registry mirrors',
    mutate: (d) => (svc(d, 'nats-sgp1').image = 'nats:2.11.9-alpine'),
    expected:
      /^stack\.yml: nats-sgp1: image: nats 2\.11\.9-alpine breaks the registry's read mirrors; run 2\.12\.0 or newer/,
  },
]

describe('the stack invariant checker', () => {
  it.each(mutations)('reports it when $description', ({ mutate, expected }) => {
    const broken = structuredClone(stack)
    const files: Files = { conf: natsConf, catalogue: structuredClone(catalogue) }
    mutate(broken, files)
    // The mutation must have changed something (a regex that no longer matches would test nothing).
    expect([broken, files.conf, files.catalogue]).not.toEqual([stack, natsConf, catalogue])
    expect(problemsWith(broken, files.conf, files.catalogue)).toContainEqual(expect.stringMatching(expected))
  })

  it('names every invariant a service without any of them breaks', () => {
    const broken = structuredClone(stack)
    broken.services.newcomer = {
      image: 'ghcr.io/vtta/backend:0.1.0',
      command: ['backend/newcomer/service.ts'],
    }
    const invariants = new Set(
      problemsWith(broken, natsConf, catalogue)
        .filter((p) => p.startsWith('stack.yml: newcomer: '))
        .map((p) => p.split(': ')[2])
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
        'signals',
        'stop_grace_period',
        'tmpfs',
        'update_config',
      ].sort()
    )
  })

  it('reports a lame-duck period that the nats grace period does not cover', () => {
    const longerLameDuck = natsConf.replace(/^(\s*lame_duck_duration:).*$/m, '$1 "90s"')
    expect(problemsWith(stack, longerLameDuck, catalogue)).toContainEqual(
      expect.stringMatching(/^stack\.yml: nats-fra1: stop_grace_period:/)
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
      description: 'an untagged base image from a registry with a port',
      edit: (t) => t.replace(/^FROM node:\S+ AS runtime$/m, 'FROM registry.internal:5000/node AS runtime'),
      expected: /FROM: registry\.internal:5000\/node must be pinned/,
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

  it('reads a comment inside a continuation, flags and a registry with a port as BuildKit does', () => {
    const edited = dockerfile
      .replace(/^( +)npm ci --omit=dev/m, '$1npm ci \\\n$1# production dependencies only\n$1--omit=dev')
      .replace(
        /^FROM node:(\S+) AS runtime$/m,
        'FROM --platform=$$BUILDPLATFORM registry.internal:5000/node:$1 AS runtime'
      )
    expect(edited).toMatch(/^ +# production dependencies only\n +--omit=dev/m)
    expect(edited).toMatch(/^FROM --platform=\$BUILDPLATFORM registry\.internal:5000\/node:24\./m)
    expect(dockerfileProblems(edited)).toEqual([])
    expect(dockerCommand(edited)).toEqual(['node', 'backend/web/service.ts'])
  })
})

describe('the signal-handling checker', () => {
  it('accepts tini in the image instead of init: true', () => {
    const withTini = dockerfile.replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT ["/usr/bin/tini", "--", "node"]')
    const noInit = structuredClone(stack)
    for (const service of Object.values(noInit.services)) delete service.init
    expect(signalProblems(withTini, noInit, readSourceFile)).toEqual([])
  })

  it('reports a node service without an init when the image has none', () => {
    const noInit = structuredClone(stack)
    delete svc(noInit, 'images').init
    expect(signalProblems(dockerfile, noInit, readSourceFile)).toEqual([
      'stack.yml: images: signals: the image has no tini, so the service needs init: true',
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

// ---------------------------------------------------------------------------------------------------------
// The operator's command

describe('npm run check:deploy', () => {
  /** The real command, as an operator runs it in the deploy shell; its exit status and what it printed. */
  const checkDeploy = (args: string[], env: Record<string, string>) => {
    const run = spawnSync('npm', ['run', '--silent', 'check:deploy', '--', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    })
    return { status: run.status, stdout: run.stdout, stderr: run.stderr }
  }

  /** A copy of the deploy files only: what the command reads, nothing else of the checkout. */
  const copy = mkdtempSync(join(tmpdir(), 'check-deploy-'))
  afterAll(() => rmSync(copy, { recursive: true, force: true }))
  for (const file of Object.values(deployFiles))
    cpSync(join(root, file), join(copy, file), { recursive: true })

  it('passes on the tree, in one line', () => {
    const { status, stdout } = checkDeploy([], deployEnv)
    expect(status).toBe(0)
    expect(stdout).toMatch(
      new RegExp(
        `^check:deploy: no problems in stack\\.yml, deploy/nats\\.conf, .*\\(${Object.keys(stack.services).length} services over fra1, ams3, lon1, nyc3, sfo3, sgp1; VTTA_VERSION 0\\.1\\.0\\)\n$`
      )
    )
  })

  it('fails on a mutated copy, each problem naming its file', () => {
    const edit = (file: string, from: RegExp, to: string) => {
      const text = readFileSync(join(copy, file), 'utf8')
      expect(text).toMatch(from)
      writeFileSync(join(copy, file), text.replace(from, to))
    }
    edit('Dockerfile', /^USER node$/m, 'USER root')
    edit('deploy/nats.conf', /^http: 127\.0\.0\.1:8222$/m, 'http: 0.0.0.0:8222')
    const { status, stdout } = checkDeploy([copy], deployEnv)
    expect(status).toBe(1)
    expect(stdout.trimEnd().split('\n')).toEqual([
      'deploy/nats.conf: the monitoring port (http) must listen on 127.0.0.1: it has no authentication',
      'Dockerfile: USER: the runtime stage must run as a non-root user',
      'check:deploy: 2 problems in deploy/nats.conf, Dockerfile; fix them before docker stack deploy',
    ])
  })

  it('checks the stack as the deploy shell will resolve it: no VTTA_VERSION, no deploy', () => {
    const { status, stdout } = checkDeploy([], { GITHUB_APP_ID: '123456', VTTA_VERSION: '' })
    expect(status).toBe(1)
    expect(stdout).toMatch(/^stack\.yml: required variable VTTA_VERSION is missing a value: set VTTA_VERSION/)
  })

  it('names the file of whatever does not read, and checks the rest', () => {
    const broken = mkdtempSync(join(tmpdir(), 'check-deploy-'))
    try {
      writeFileSync(join(broken, 'stack.yml'), stackText.replace(/^(\s+replicas:) 6$/m, '$1 six'))
      writeFileSync(join(broken, 'Dockerfile'), dockerfile)
      writeFileSync(join(broken, '.dockerignore'), dockerignore ?? '')
      const { files, problems } = readDeployFiles(broken, deployEnv)
      expect(problems).toEqual([
        'stack.yml: services.images.deploy.replicas: expected a number',
        'stack.yml: services.nats-exporter.deploy.replicas: expected a number',
        'deploy/datacenters.production.json: missing',
        'deploy/nats.conf: missing',
      ])
      expect(deployProblems(files)).toEqual([])
    } finally {
      rmSync(broken, { recursive: true, force: true })
    }
  })

  it('refuses anything but a checkout directory', () => {
    const { status, stderr } = checkDeploy(['--fix'], deployEnv)
    expect(status).toBe(2)
    expect(stderr).toMatch(/^check:deploy: --fix is not a checkout directory\nusage: npm run check:deploy/)
  })
})
