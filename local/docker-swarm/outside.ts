/**
 * The swarm's outside world on this machine, on the bridge so that containers reach it through their
 * node: the GitHub stand-in (the local GitHub App) and the Discord stand-in, each a detached process
 * (pid in .local/docker-swarm/<kind>-stand-in.pid), and the edge (wrangler dev) pointed at the nodes.
 * state.json in .local/docker-swarm has the shape of the local platform's, so `npm run swarm --`
 * (drain, status, enroll, transfer) works on the swarm with LOCAL_DIR=.local/docker-swarm.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { edgeSpec, projectRoot } from '../platform-specs.ts'
import { localEnv } from '../env.ts'
import type { EdgeSecrets } from '../edge-secrets.ts'
import type { LocalGitHubApp } from '../github-app.ts'
import type { ProcessSpec } from '../processes.ts'
import type { StateFile } from '../state.ts'
import { waitForHttp } from '../wait.ts'
import { bridge, edgePort, outside, productionCatalogue, type SwarmNode } from './topology.ts'
import { swarmWebhook } from './deploy.ts'
import { standIns } from '../addresses.ts'

const ports = { web: 8080, natsClient: 4222, natsWebSocket: 8443 }
export const edgeUrl = `http://127.0.0.1:${edgePort}`

export async function startStandIns(swarmDir: string, app: LocalGitHubApp): Promise<void> {
  mkdirSync(join(swarmDir, 'logs'), { recursive: true })
  for (const kind of ['github', 'discord'] as const) {
    const url = outside[kind].url
    const ready = `${url}${standIns[kind].readyPath}`
    const answering = await fetch(ready).then(
      (r) => r.ok,
      () => false
    )
    if (answering) {
      // Ours from an earlier swarm:up holds this swarm's App key; anything else is in the way.
      if (pidOf(swarmDir, kind) > 0) continue
      throw new Error(`something already answers on ${url} (left by an interrupted run? npm run swarm:down)`)
    }
    const log = openSync(join(swarmDir, 'logs', `${kind}-stand-in.log`), 'a')
    const child = spawn(
      process.execPath,
      [join(projectRoot, 'local', 'stand-ins', 'serve.ts'), kind, bridge.address, String(outside[kind].port)],
      { cwd: projectRoot, detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...app } }
    )
    writeFileSync(join(swarmDir, `${kind}-stand-in.pid`), String(child.pid))
    child.unref()
    await waitForHttp(ready, { timeoutMs: 15_000, what: `the ${kind} stand-in` })
  }
}

export function writeSwarmState(swarmDir: string, nodes: SwarmNode[]): StateFile {
  const state: StateFile = {
    edge: edgeUrl,
    control: '',
    processes: [
      ...nodes.flatMap((n) => [
        { dc: n.dc, service: 'nats', pid: 0, url: `nats://${n.address}:${ports.natsClient}` },
        { dc: n.dc, service: 'web', pid: 0, url: `http://${n.address}:${ports.web}` },
      ]),
      { dc: null, service: 'github-stand-in', pid: pidOf(swarmDir, 'github'), url: outside.github.url },
      { dc: null, service: 'discord-stand-in', pid: pidOf(swarmDir, 'discord'), url: outside.discord.url },
    ],
  }
  writeFileSync(join(swarmDir, 'state.json'), JSON.stringify(state, null, 2) + '\n')
  return state
}

function pidOf(swarmDir: string, kind: string): number {
  try {
    return Number(readFileSync(join(swarmDir, `${kind}-stand-in.pid`), 'utf8'))
  } catch {
    return 0
  }
}

/** The edge (wrangler dev, as `npm start` runs it) with the swarm's nodes as its datacenters. */
export function swarmEdgeSpec(
  swarmDir: string,
  nodes: SwarmNode[],
  secrets: EdgeSecrets,
  tunables: NodeJS.ProcessEnv = {}
): ProcessSpec {
  const env = localEnv({}, edgeUrl, secrets).values
  env.DISCORD_WEBHOOK_URL = swarmWebhook(standIns.discord.webhookUrl)
  return edgeSpec(productionCatalogue(), {
    localDir: swarmDir,
    edgePort,
    env,
    tunables,
    endpoints: (i) => ({
      web: `http://${nodes[i]!.address}:${ports.web}`,
      natsWs: `wss://${nodes[i]!.address}:${ports.natsWebSocket}`,
    }),
    natsEdgeSeed: readFileSync(join(swarmDir, 'secrets', 'nats', 'edge.nk'), 'utf8').trim(),
    // workerd trusts the local origin CA (Miniflare reads NODE_EXTRA_CA_CERTS), as Cloudflare trusts
    // its Origin CA in production.
    processEnv: { NODE_EXTRA_CA_CERTS: join(swarmDir, 'secrets', 'origin-ca.pem') },
  })
}
