/**
 * The nodes the deploy checks see (deploy/check/nodes.ts) and what their constraints let land on each: one
 * node per datacenter of stack.yml, labelled as the runbook labels it, its region from the production
 * catalogue; constraints read as Swarm reads them. The capacity check counts a service's reservations only on
 * the nodes its constraints admit (deploy/check/capacity.ts).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseCatalogue } from '#shared/catalogue.ts'
import { capacityProblems } from '../../deploy/check/capacity.ts'
import { catalogueFile } from '../../deploy/check/catalogue.ts'
import { admits, nodesOf, stackNodes, type StackNode } from '../../deploy/check/nodes.ts'
import { loadStack, type Stack } from '../../deploy/check/stack-file.ts'
import { projectRoot } from '../../local/platform-specs.ts'

const read = (file: string) => readFileSync(join(projectRoot, file), 'utf8')
const stack = loadStack(read('stack.yml'), { VTTA_VERSION: '0.1.0', GITHUB_APP_ID: '123456' })
const catalogue = parseCatalogue(JSON.parse(read(catalogueFile)), catalogueFile)
const nodes = stackNodes(stack, catalogue)
const node = (dc: string): StackNode => nodes.find((n) => n.dc === dc)!
const dcs = (list: readonly StackNode[]) => list.map((n) => n.dc)

describe('the nodes of the production stack', () => {
  it('are one per datacenter, labelled with the catalogue’s region', () => {
    expect(nodes.map((n) => [n.dc, n.labels])).toEqual(
      catalogue.map((dc) => [dc.id, { dc: dc.id, region: dc.region, role: 'app', nats: 'true' }])
    )
  })

  it('admit a task as Swarm does: every constraint, values case-insensitive, a missing label empty', () => {
    expect(nodes.filter((n) => admits(['node.labels.region == eu'], n)).map((n) => n.dc)).toEqual([
      'fra1',
      'ams3',
      'lon1',
    ])
    expect(admits(['node.labels.region==EU', 'node.labels.role == app'], node('ams3'))).toBe(true)
    expect(admits(['node.labels.region == eu', 'node.labels.dc != ams3'], node('ams3'))).toBe(false)
    expect(admits(['node.hostname == sgp1'], node('sgp1'))).toBe(true)
    expect(admits(['node.hostname == sgp1'], node('nyc3'))).toBe(false)
    // No node carries a `disk` label: == fails, != holds. The label's own name is case-sensitive.
    expect(admits(['node.labels.disk == ssd'], node('fra1'))).toBe(false)
    expect(admits(['node.labels.disk != ssd'], node('fra1'))).toBe(true)
    expect(admits(['node.labels.Region == eu'], node('fra1'))).toBe(false)
  })

  it('admit where the checks cannot know: a region the catalogue does not give, another attribute', () => {
    const unknown = stackNodes(stack, undefined)
    expect(unknown.map((n) => n.labels.region)).toEqual(nodes.map(() => undefined))
    expect(unknown.every((n) => admits(['node.labels.region == eu'], n))).toBe(true)
    expect(admits(['node.role == manager', 'engine.labels.os == linux'], node('sgp1'))).toBe(true)
  })

  it("place each service of stack.yml's on the nodes its constraints name", () => {
    expect(dcs(nodesOf(stack.services['nats-lon1']!, nodes))).toEqual(['lon1'])
    expect(dcs(nodesOf(stack.services['web-sgp1']!, nodes))).toEqual(['sgp1'])
    expect(dcs(nodesOf(stack.services.images!, nodes))).toEqual(dcs(nodes))
  })
})

describe('the capacity check', () => {
  /** The stack with releases kept in Europe, reserving `cpus`. */
  const releasesInEurope = (cpus: string): Stack => {
    const changed = structuredClone(stack)
    const deploy = changed.services.releases!.deploy!
    deploy.placement = {
      ...deploy.placement,
      constraints: ['node.labels.role == app', 'node.labels.region == eu'],
    }
    deploy.resources!.reservations!.cpus = cpus
    return changed
  }
  const shortNodes = (s: Stack) =>
    capacityProblems(s, nodes).map((p) => /^stack\.yml: capacity: ([a-z0-9]+)'s node/.exec(p)?.[1])

  it('counts a service kept in one region on that region’s nodes only', () => {
    expect(capacityProblems(stack, nodes)).toEqual([])
    // 0.4 CPUs more for releases: the European nodes are short (2.30 of 2), the others do not hold it.
    expect(shortNodes(releasesInEurope('0.5'))).toEqual(['fra1', 'ams3', 'lon1'])
    expect(capacityProblems(releasesInEurope('0.5'), nodes)[0]).toMatch(
      /^stack\.yml: capacity: fra1's node would have 2\.30 CPUs reserved/
    )
  })

  it('counts it everywhere when the nodes’ regions are not known', () => {
    expect(capacityProblems(releasesInEurope('0.5'), stackNodes(stack, undefined))).toHaveLength(nodes.length)
  })
})
