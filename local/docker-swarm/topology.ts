/**
 * The swarm `npm run swarm:up` makes on this machine (contract): one Docker Engine per datacenter of
 * the production catalogue (deploy/datacenters.production.json), each in its own network namespace
 * `vtta-<dc>` with its own hostname (= the datacenter id, as the runbook asks of every node), joined by
 * one bridge on which this machine is 10.98.0.1 (the registry, the stand-ins, the edge) and the n-th
 * node 10.98.0.(n+2). Every address is inside namespaces made here; nothing leaves the machine.
 * The managers are the home region's nodes, as docs/operations.md ("Bootstrap the swarm") keeps them; every
 * other node is a worker, on which `docker node` and `docker service` do not answer.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseCatalogue, type Catalogue } from '#shared/catalogue.ts'
import { homeRegion } from '#shared/regions.ts'
import { projectRoot } from '../platform-specs.ts'

export const bridge = { name: 'vtta-swarm0', address: '10.98.0.1', prefix: 24 } as const
export const registryHost = `${bridge.address}:5000`
/** Where the swarm's outside world listens (on the bridge, so containers reach it through their node). */
export const outside = {
  github: { port: 8790, url: `http://${bridge.address}:8790` },
  discord: { port: 8791, url: `http://${bridge.address}:8791` },
  /** The image origin a test or the operator serves sources from (IMAGE_SOURCE_HOSTS allows it). */
  imageOrigin: { port: 8792, host: `${bridge.address}:8792` },
} as const
export const edgePort = 8788

export interface SwarmNode {
  dc: string
  region: string
  /** A swarm manager: a node of the home region (the JetStream majority's); the others join as workers. */
  manager: boolean
  address: string
  netns: string
  /** The host end of the node's veth pair (15 characters at most, the kernel's limit). */
  hostLink: string
  /** The node's docker_gwbridge subnet (engines.ts makeGatewayBridge). */
  gatewaySubnet: string
  dir: string
  socket: string
  dockerHost: string
}

export const swarmDir = (localDir: string) => resolve(localDir, 'docker-swarm')

export function productionCatalogue(): Catalogue {
  const file = join(projectRoot, 'deploy', 'datacenters.production.json')
  return parseCatalogue(JSON.parse(readFileSync(file, 'utf8')), 'deploy/datacenters.production.json')
}

export function swarmNodes(localDir: string, catalogue = productionCatalogue()): SwarmNode[] {
  if (catalogue.length > 250) throw new RangeError('at most 250 nodes on 10.98.0.0/24')
  const home = homeRegion(catalogue).id
  return catalogue.map((dc, i) => {
    const dir = join(swarmDir(localDir), 'nodes', dc.id)
    const socket = join(dir, 'docker.sock')
    return {
      dc: dc.id,
      region: dc.region,
      manager: dc.region === home,
      address: `10.98.0.${i + 2}`,
      netns: `vtta-${dc.id}`,
      hostLink: `vtta-${dc.id}`.slice(0, 13) + '-h',
      // Inside 10.98.0.0/16, which only this swarm uses (the bridge is 10.98.0.0/24).
      gatewaySubnet: `10.98.${i + 2}.0/24`,
      dir,
      socket,
      dockerHost: `unix://${socket}`,
    }
  })
}

/** Where the operator's `docker node`, `docker service` and `docker stack` commands go: the first manager. */
export function managerOf(nodes: readonly SwarmNode[]): SwarmNode {
  const manager = nodes.find((n) => n.manager)
  if (!manager) throw new Error('no manager among the swarm nodes: the catalogue has no home region node')
  return manager
}
