/**
 * `npm run swarm:up`: the production stack on a real Docker Swarm on this machine (needs root and
 * Debian's docker.io, debootstrap and docker-registry, which `npm run swarm:up` installs when it can):
 * one node per datacenter of deploy/datacenters.production.json (topology.ts), the images built and
 * pushed to a local registry (images.ts), the swarm formed, secrets made and the stack deployed by
 * the runbook's own commands (runbook.ts), the GitHub and Discord stand-ins, the fixture repositories
 * enrolled. Then `npm run swarm:edge` runs the edge in front of it; `npm run swarm:down` removes it all.
 *   VTTA_VERSION     the backend image's tag (default: package.json's version)
 *   SWARM_NODE_DISK  the size of each node's Docker data-root filesystem (default 3G, engines.ts)
 *   LOCAL_DIR     default .local (the swarm lives in <LOCAL_DIR>/docker-swarm)
 */
import { errorMessage } from '#shared/error-message.ts'
import { mkdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { loadEdgeSecrets } from '../edge-secrets.ts'
import { ensureLocalGitHubApp } from '../github-app.ts'
import { enrollFixtureRepositories } from '../enroll-fixtures.ts'
import { projectRoot } from '../platform-specs.ts'
import { makeGatewayBridge, makeNetwork, startEngine, waitForEngines, formSwarm } from './engines.ts'
import {
  builderOf,
  buildBackend,
  buildTunnelStandIn,
  makeBaseImages,
  makeMonitoringImages,
  push,
  type MonitoringImages,
  startBuilderAndRegistry,
} from './images.ts'
import { converge, createSecrets, deploy, deployEnv, makeCheckout } from './deploy.ts'
import { runRunbook } from './runbook.ts'
import { startStandIns, writeSwarmState } from './outside.ts'
import { managerOf, outside, registryHost, swarmDir as swarmDirOf, swarmNodes } from './topology.ts'
import { waitForHttp } from '../wait.ts'

export interface SwarmUp {
  swarmDir: string
  version: string
  images: { nats: string; tunnel: string } & MonitoringImages
  build: { seconds: number; sizeBytes: number }
  convergeMs: number
}

export async function swarmUp(localDir: string, version: string, log = console.log): Promise<SwarmUp> {
  if (process.getuid?.() !== 0)
    throw new Error('needs root: it makes network namespaces and runs Docker Engines')
  const swarmDir = swarmDirOf(localDir)
  mkdirSync(swarmDir, { recursive: true })
  const nodes = swarmNodes(localDir)
  log(`nodes: ${nodes.map((n) => `${n.dc} ${n.address}`).join(', ')}`)
  makeNetwork(nodes)
  for (const node of nodes) startEngine(node)
  const builder = builderOf(swarmDir)
  startBuilderAndRegistry(swarmDir, builder)
  await waitForEngines([...nodes, builder])
  await waitForHttp(`http://${registryHost}/v2/`, { timeoutMs: 20_000, what: 'the local registry' })

  const base = makeBaseImages(swarmDir, builder)
  log(`base images: ${base.node}, ${base.nats}`)
  const built = buildBackend(builder, version)
  log(`built ${built.image}: ${(built.sizeBytes / 1e6).toFixed(0)} MB in ${built.seconds.toFixed(1)} s`)
  push(builder, built.image)
  const natsImage = push(builder, base.nats)
  const tunnelImage = push(builder, buildTunnelStandIn(builder))
  const monitoring = makeMonitoringImages(swarmDir, builder)
  const images = {
    nats: natsImage,
    tunnel: tunnelImage,
    prometheus: push(builder, monitoring.prometheus),
    alertmanager: push(builder, monitoring.alertmanager),
    nodeExporter: push(builder, monitoring.nodeExporter),
  }

  for (const node of nodes) makeGatewayBridge(node)
  const checkout = makeCheckout(swarmDir)
  const manager = { dockerHost: managerOf(nodes).dockerHost, cwd: checkout }
  formSwarm(nodes, (node, block, env) =>
    runRunbook(block, { dockerHost: node.dockerHost, cwd: checkout }, env)
  )
  const edge = loadEdgeSecrets(swarmDir).secrets
  const app = ensureLocalGitHubApp(swarmDir, {})
  await startStandIns(swarmDir, app)
  createSecrets(manager, swarmDir, nodes, edge, app)
  deploy(manager, deployEnv(version, images, app, swarmDir))
  const convergeMs = await converge(manager.dockerHost)
  log(`stack converged in ${(convergeMs / 1000).toFixed(0)} s`)
  const state = writeSwarmState(swarmDir, nodes)
  await enrollFixtureRepositories(state, swarmDir, outside.github.url, app)
  return { swarmDir, version, images, build: built, convergeMs }
}

export const packageVersion = () =>
  (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version

if (import.meta.main) {
  const localDir = resolve(process.env.LOCAL_DIR ?? join(projectRoot, '.local'))
  try {
    const up = await swarmUp(localDir, process.env.VTTA_VERSION ?? packageVersion())
    console.log(
      `swarm up (${up.swarmDir}). The edge: npm run swarm:edge; operate: LOCAL_DIR=${up.swarmDir} npm run swarm -- status`
    )
  } catch (error) {
    console.error(`swarm:up: ${errorMessage(error)}`)
    process.exit(1)
  }
}
