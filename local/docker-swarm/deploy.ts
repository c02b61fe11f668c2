/**
 * Secrets and the stack, the runbook's way: an operator's checkout (stack.yml, deploy/ and this
 * machine's stack.local.yml) under .local/docker-swarm/checkout, every secret made by the runbook's
 * own blocks, then `docker stack deploy` as the runbook writes it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { docker, run } from './command.ts'
import { runRunbook, type RunbookContext } from './runbook.ts'
import { projectRoot } from '../platform-specs.ts'
import { writeProductionAuth } from '../nats-auth/command.ts'
import { bridge, outside, productionCatalogue, registryHost, type SwarmNode } from './topology.ts'
import type { EdgeSecrets } from '../edge-secrets.ts'
import type { LocalGitHubApp } from '../github-app.ts'
import type { MonitoringImages } from './images.ts'
import { standIns } from '../addresses.ts'

export const stackName = 'vtta'

/** The operator's checkout the runbook's commands run in (they edit stack.yml there, never here). */
export function makeCheckout(swarmDir: string): string {
  const dir = join(swarmDir, 'checkout')
  // Fresh on every swarm:up: the repository's files are the truth (a drill's edits live until then).
  mkdirSync(dir, { recursive: true })
  cpSync(join(projectRoot, 'stack.yml'), join(dir, 'stack.yml'))
  cpSync(join(projectRoot, 'deploy'), join(dir, 'deploy'), { recursive: true })
  cpSync(join(projectRoot, 'local', 'docker-swarm', 'stack.local.yml'), join(dir, 'stack.local.yml'))
  return dir
}

/** The NATS WebSocket's certificate: a local CA stands in for Cloudflare's Origin CA (the edge trusts it). */
export function makeOriginCertificate(secretsDir: string, nodes: SwarmNode[]) {
  const files = {
    ca: join(secretsDir, 'origin-ca.pem'),
    cert: join(secretsDir, 'origin-cert.pem'),
    key: join(secretsDir, 'origin-key.pem'),
  }
  if (existsSync(files.cert)) return files
  const caKey = join(secretsDir, 'origin-ca-key.pem')
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-days',
    '365',
    '-subj',
    '/CN=vtta local origin CA',
    '-keyout',
    caKey,
    '-out',
    files.ca,
  ])
  const csr = join(secretsDir, 'origin.csr')
  run('openssl', ['req', ...ec, '-subj', '/CN=*.vtta.io', '-keyout', files.key, '-out', csr])
  const ext = join(secretsDir, 'origin.ext')
  const sans = ['DNS:*.vtta.io', ...nodes.map((n) => `IP:${n.address}`)].join(',')
  writeFileSync(ext, `subjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`)
  run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    files.ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-days',
    '365',
    '-extfile',
    ext,
    '-out',
    files.cert,
  ])
  return files
}

/** The Discord webhooks of the stand-in, as containers reach it (on the bridge). */
export const swarmWebhook = (url: string) => url.replace(standIns.discord.url, outside.discord.url)

export function createSecrets(
  ctx: RunbookContext,
  swarmDir: string,
  nodes: SwarmNode[],
  edge: EdgeSecrets,
  app: LocalGitHubApp
): void {
  const existing = new Set(docker(ctx.dockerHost, ['secret', 'ls', '--format', '{{.Name}}']).split('\n'))
  if (existing.has('nats_seed_web_v1')) return
  const secrets = join(swarmDir, 'secrets')
  const natsDir = join(secrets, 'nats')
  // `npm run nats-auth -- <dir>`: the same function, on the catalogue the nodes come from.
  writeProductionAuth(
    natsDir,
    productionCatalogue().filter((dc) => nodes.some((n) => n.dc === dc.id))
  )
  const origin = makeOriginCertificate(secrets, nodes)
  runRunbook('create-secrets', ctx, {
    DISCORD_WEBHOOK_URL: swarmWebhook(standIns.discord.webhookUrl),
    DISCORD_OPERATOR_WEBHOOK_URL: swarmWebhook(standIns.discord.operatorWebhookUrl),
    GITHUB_APP_PRIVATE_KEY_FILE: app.GITHUB_APP_PRIVATE_KEY_FILE,
    PURGE_TOKEN: edge.PURGE_TOKEN,
    ORIGIN_CERT_FILE: origin.cert,
    ORIGIN_KEY_FILE: origin.key,
  })
  runRunbook('nats-secrets', ctx, { NATS_CREDENTIALS_DIR: natsDir })
  runRunbook('origin-secrets', ctx, {
    CLIENT_ID: edge.ORIGIN_CLIENT_ID,
    CLIENT_SECRET: edge.ORIGIN_CLIENT_SECRET,
  })
  // No tunnel offline (stack.local.yml runs no connector), but the stack names its token secrets.
  for (const node of nodes)
    docker(ctx.dockerHost, ['secret', 'create', `cloudflared_token_${node.dc}_v1`, '-'], {
      input: 'no tunnel on the local swarm',
    })
}

/** What `docker stack deploy` reads from its environment on this machine. */
export function deployEnv(
  version: string,
  images: { nats: string; tunnel: string } & MonitoringImages,
  app: LocalGitHubApp,
  swarmDir: string
): Record<string, string> {
  return {
    VTTA_IMAGE: `${registryHost}/vtta/backend`,
    VTTA_VERSION: version,
    NATS_IMAGE: images.nats,
    TUNNEL_IMAGE: images.tunnel,
    PROMETHEUS_IMAGE: images.prometheus,
    ALERTMANAGER_IMAGE: images.alertmanager,
    NODE_EXPORTER_IMAGE: images.nodeExporter,
    // The drills of `npm run test:swarm` publish some 1,600 versions of three fixture modules (test/swarm/load.ts):
    // past production's 500 per repository, which would reject the last drill's releases as quota_exceeded.
    REPOSITORY_QUOTA_VERSIONS: '5000',
    // A node's disk is a few GB here (engines.ts, nodeDiskSize): the TSDB's bound must fit in it.
    PROMETHEUS_RETENTION_SIZE: '256MB',
    // stack.local.yml's node exporter mounts <nodes>/<its hostname>/data, its node's data-root.
    SWARM_NODES_DIR: join(swarmDir, 'nodes'),
    GITHUB_APP_ID: app.GITHUB_APP_ID,
    GITHUB_API_URL: outside.github.url,
    RELEASE_ASSET_HOSTS: `${bridge.address}:${outside.github.port}`,
    IMAGE_SOURCE_HOSTS: `www.dndbeyond.com,media.dndbeyond.com,${outside.imageOrigin.host}`,
    PUBLIC_BASE_URL: `http://127.0.0.1:8788`,
  }
}

export const deploy = (ctx: RunbookContext, env: Record<string, string>) => runRunbook('deploy', ctx, env)

export interface ServiceState {
  name: string
  running: number
  desired: number
}

export function serviceStates(dockerHost: string): ServiceState[] {
  return docker(dockerHost, ['service', 'ls', '--format', '{{.Name}} {{.Replicas}}'])
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name, replicas] = line.split(' ')
      const [running, desired] = (replicas ?? '0/0').split('/').map((n) => Number.parseInt(n, 10))
      return { name: name!, running: running ?? 0, desired: desired ?? 0 }
    })
}

/** Waits until every service runs as many healthy tasks as it wants; returns the time it took. */
export async function converge(dockerHost: string, timeoutMs = 240_000): Promise<number> {
  const started = Date.now()
  for (;;) {
    // The managers answer an error while they have no leader (an election after a partition): not yet.
    let states: ServiceState[] = []
    try {
      states = serviceStates(dockerHost)
    } catch {
      states = []
    }
    const behind = states.filter((s) => s.running !== s.desired)
    if (states.length > 0 && behind.length === 0) return Date.now() - started
    if (Date.now() - started > timeoutMs)
      throw new Error(
        `the stack did not converge: ${behind.map((s) => `${s.name} ${s.running}/${s.desired}`).join(', ')}`
      )
    await sleep(1_000)
  }
}
