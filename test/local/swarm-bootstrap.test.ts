/**
 * The lab swarm's bootstrap (local/docker-swarm: topology.ts, engines.ts formSwarm) keeps the managers the
 * runbook keeps: the home region's nodes are managers and every other node joins as a worker, whatever
 * the catalogue names them. formSwarm runs against a stand-in `docker` that answers as an engine not yet in
 * a swarm and records what it is asked; the runbook blocks it would run are recorded, not run.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { parseCatalogue } from '#shared/catalogue.ts'
import { homeRegion } from '#shared/regions.ts'
import { formSwarm } from '../../local/docker-swarm/engines.ts'
import {
  managerOf,
  productionCatalogue,
  swarmNodes,
  type SwarmNode,
} from '../../local/docker-swarm/topology.ts'

const localDir = mkdtempSync(join(tmpdir(), 'vtta-swarm-bootstrap-'))

/** A catalogue whose home region is `us` (three JetStream servers of five), listed after a European one. */
const usHome = parseCatalogue(
  [
    { id: 'lon1', name: 'London', region: 'eu', lat: 51.51, lon: -0.13 },
    { id: 'nyc1', name: 'New York 1', region: 'us', lat: 40.71, lon: -74.01 },
    { id: 'nyc3', name: 'New York 3', region: 'us', lat: 40.71, lon: -74.01 },
    { id: 'tor1', name: 'Toronto', region: 'us', lat: 43.65, lon: -79.38 },
    { id: 'sgp1', name: 'Singapore', region: 'ap', lat: 1.35, lon: 103.82 },
  ],
  'test'
)

interface Step {
  on: string
  block: string
  env: Record<string, string>
}

/**
 * formSwarm against a stand-in docker: engines whose socket is in `active` answer they are in a swarm; the
 * join tokens name their role. Returns the runbook steps and the docker calls (DOCKER_HOST and arguments).
 */
function bootstrap(nodes: SwarmNode[], active: SwarmNode[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'vtta-docker-'))
  const calls = join(dir, 'calls')
  writeFileSync(calls, '')
  const activeHosts = active.map((n) => n.dockerHost).join(' ')
  writeFileSync(
    join(dir, 'docker'),
    `#!/bin/sh
echo "$DOCKER_HOST $*" >> '${calls}'
case "$*" in
  info*) case " ${activeHosts} " in *" $DOCKER_HOST "*) echo active ;; *) echo inactive ;; esac ;;
  "swarm join-token -q manager") echo SWMTKN-manager ;;
  "swarm join-token -q worker") echo SWMTKN-worker ;;
  *) exit 1 ;;
esac
`
  )
  chmodSync(join(dir, 'docker'), 0o755)
  vi.stubEnv('PATH', `${dir}:${process.env.PATH ?? ''}`)
  const steps: Step[] = []
  formSwarm(nodes, (node, block, env) => steps.push({ on: node.dc, block, env }))
  const dockerCalls = readFileSync(calls, 'utf8').trim().split('\n')
  return { steps, dockerCalls }
}

afterEach(() => {
  vi.unstubAllEnvs()
})

describe('the lab swarm’s managers', () => {
  it("are production's home region nodes; the other regions' nodes are workers", () => {
    const nodes = swarmNodes(localDir)
    const home = homeRegion(productionCatalogue())
    expect(nodes.filter((n) => n.manager).map((n) => n.dc)).toEqual(home.datacenters.map((d) => d.id))
    // The runbook's three managers in Europe, the rest workers.
    expect(nodes.filter((n) => n.manager).map((n) => n.dc)).toEqual(['fra1', 'ams3', 'lon1'])
    expect(nodes.filter((n) => !n.manager).map((n) => n.region)).toEqual(['us', 'us', 'ap'])
    expect(managerOf(nodes).dc).toBe('fra1')
  })

  it('follow the catalogue’s home region, not a datacenter’s name or place in the list', () => {
    const nodes = swarmNodes(localDir, usHome)
    expect(nodes.filter((n) => n.manager).map((n) => n.dc)).toEqual(['nyc1', 'nyc3', 'tor1'])
    expect(managerOf(nodes).dc).toBe('nyc1')
  })
})

describe('formSwarm', () => {
  it('inits on the first manager, joins managers and workers with their tokens, labels every node', () => {
    const nodes = swarmNodes(localDir)
    const [fra1] = nodes
    const { steps, dockerCalls } = bootstrap(nodes)
    const joinEnv = (n: SwarmNode) => ({ NODE_IP: n.address, MANAGER_IP: fra1!.address })
    expect(steps).toEqual([
      { on: 'fra1', block: 'swarm-init', env: { NODE_IP: fra1!.address } },
      ...nodes
        .slice(1)
        .map((n) =>
          n.manager
            ? { on: n.dc, block: 'swarm-join', env: { ...joinEnv(n), MANAGER_TOKEN: 'SWMTKN-manager' } }
            : { on: n.dc, block: 'swarm-join-worker', env: { ...joinEnv(n), WORKER_TOKEN: 'SWMTKN-worker' } }
        ),
      ...nodes.map((n) => ({ on: 'fra1', block: 'label-node', env: { DC: n.dc } })),
    ])
    expect(steps.filter((s) => s.block === 'swarm-join').map((s) => s.on)).toEqual(['ams3', 'lon1'])
    expect(steps.filter((s) => s.block === 'swarm-join-worker').map((s) => s.on)).toEqual([
      'nyc3',
      'sfo3',
      'sgp1',
    ])
    // Only a manager is asked for what only a manager answers.
    for (const call of dockerCalls.filter((c) => c.includes('join-token')))
      expect(call.split(' ')[0]).toBe(fra1!.dockerHost)
  })

  it('with a home region listed second, inits there and joins the first datacenter as a worker', () => {
    const nodes = swarmNodes(localDir, usHome)
    const { steps } = bootstrap(nodes)
    expect(steps[0]).toEqual({ on: 'nyc1', block: 'swarm-init', env: { NODE_IP: nodes[1]!.address } })
    expect(steps.filter((s) => s.block === 'swarm-join').map((s) => s.on)).toEqual(['nyc3', 'tor1'])
    expect(steps.filter((s) => s.block === 'swarm-join-worker').map((s) => s.on)).toEqual(['lon1', 'sgp1'])
    expect(new Set(steps.filter((s) => s.block === 'label-node').map((s) => s.on))).toEqual(new Set(['nyc1']))
  })

  it('leaves nodes already in the swarm as they are (swarm:up run again)', () => {
    const nodes = swarmNodes(localDir)
    const { steps } = bootstrap(nodes, nodes)
    expect(steps.map((s) => s.block)).toEqual(nodes.map(() => 'label-node'))
  })
})
