/**
 * Where the spread services of stack.yml run across regions (deploy/check/spread.ts): the consumers of the
 * release streams (shared/services.ts homeRegionServices) only on the home region's nodes, one task per
 * datacenter there; every other spread service one task per datacenter everywhere. On the real files nothing
 * is wrong; each break below (a release consumer that may run across an ocean, a wrong count, a constraint
 * that leaves a datacenter out) is refused, naming the file, the service and the fix.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseCatalogue } from '#shared/catalogue.ts'
import { homeRegion } from '#shared/regions.ts'
import { homeRegionServices, serviceNames, servicesOf } from '#shared/services.ts'
import { catalogueFile } from '../../deploy/check/catalogue.ts'
import { deployProblems } from '../../deploy/check/index.ts'
import { spreadProblems } from '../../deploy/check/spread.ts'
import { loadStack, type Stack } from '../../deploy/check/stack-file.ts'
import { projectRoot } from '../../local/platform-specs.ts'

const read = (file: string) => readFileSync(join(projectRoot, file), 'utf8')
const stack = loadStack(read('stack.yml'), { VTTA_VERSION: '0.1.0', GITHUB_APP_ID: '123456' })
const catalogueJson: unknown = JSON.parse(read(catalogueFile))
const catalogue = parseCatalogue(catalogueJson, catalogueFile)
const home = homeRegion(catalogue)

/** A copy of the stack with one service's deploy section changed. */
const changed = (
  service: string,
  change: (deploy: NonNullable<Stack['services'][string]['deploy']>) => void
) => {
  const copy = structuredClone(stack)
  change(copy.services[service]!.deploy!)
  return copy
}
const withConstraints = (service: string, constraints: string[]) =>
  changed(service, (deploy) => (deploy.placement = { ...deploy.placement, constraints }))

const homeWhere = `one task per datacenter of the home region eu (fra1, ams3, lon1 in ${catalogueFile})`
const everywhere = `one task per datacenter (fra1, ams3, lon1, nyc3, sfo3, sgp1 in ${catalogueFile})`

describe('the real stack and production catalogue', () => {
  it('run the release consumers in the home region, one task per datacenter there; the rest everywhere', () => {
    expect(spreadProblems(stack, catalogueJson)).toEqual([])
    // What the catalogue says, not names: the services of the home region's datacenters only.
    const homeIds = home.datacenters.map((dc) => dc.id)
    for (const service of serviceNames.filter((s) => s !== 'web')) {
      const runsIn = catalogue.filter((dc) => servicesOf(catalogue, dc).includes(service))
      const deploy = stack.services[service]!.deploy!
      expect(deploy.replicas, service).toBe(runsIn.length)
      if (homeRegionServices.includes(service)) {
        expect(runsIn.map((dc) => dc.id)).toEqual(homeIds)
        expect(deploy.placement?.constraints).toContain(`node.labels.region == ${home.id}`)
      } else expect(runsIn).toHaveLength(catalogue.length)
    }
    expect(home.id).toBe('eu')
    expect(stack.services.releases!.deploy!.replicas).toBe(3)
    expect(stack.services['nats-exporter']!.deploy!.replicas).toBe(catalogue.length)
  })

  it('keep every other setting of the backend deploy for the home region’s services', () => {
    /** A deploy section but where and how many, and its own resources. */
    const settings = (service: string) =>
      Object.fromEntries(
        Object.entries(stack.services[service]!.deploy!).filter(
          ([key]) => !['replicas', 'placement', 'resources'].includes(key)
        )
      )
    expect(Object.keys(settings('images'))).toEqual(
      expect.arrayContaining(['update_config', 'rollback_config', 'restart_policy', 'endpoint_mode'])
    )
    for (const service of homeRegionServices) {
      expect(settings(service), service).toEqual(settings('images'))
      const { replicas, placement } = stack.services[service]!.deploy!
      expect(replicas).toBe(3)
      expect(placement).toEqual({
        max_replicas_per_node: 1,
        constraints: ['node.labels.role == app', 'node.labels.region == eu'],
        preferences: [{ spread: 'node.labels.dc' }],
      })
    }
  })
})

describe('a release consumer that may run across an ocean', () => {
  it('is refused without the home region constraint, naming the fix', () => {
    const problems = spreadProblems(withConstraints('releases', ['node.labels.role == app']), catalogueJson)
    expect(problems).toEqual([
      `stack.yml: releases: placement: releases runs in the home region eu only, ${homeWhere}: add the constraint node.labels.region == eu (a consumer of the release streams pays 75-170 ms on each JetStream round trip across an ocean)`,
    ])
  })

  it('is refused when constrained to another region', () => {
    const broken = withConstraints('notifier', ['node.labels.role == app', 'node.labels.region == us'])
    expect(spreadProblems(broken, catalogueJson)).toEqual([
      expect.stringMatching(
        /^stack\.yml: notifier: placement: notifier runs in the home region eu only, .*: replace the constraint node\.labels\.region == us by node\.labels\.region == eu/
      ),
    ])
  })

  it('is refused with a task per datacenter of every region', () => {
    expect(
      spreadProblems(
        changed('releases', (d) => (d.replicas = 6)),
        catalogueJson
      )
    ).toEqual([`stack.yml: releases: replicas: must be 3, ${homeWhere}, not 6`])
  })

  it('is refused by npm run check:deploy’s checks as a whole', () => {
    const broken = withConstraints('releases', ['node.labels.role == app'])
    const problems = deployProblems({
      stack: broken,
      natsConf: read('deploy/nats.conf'),
      catalogue: catalogueJson,
      dockerfile: read('Dockerfile'),
      dockerignore: read('.dockerignore'),
    })
    expect(problems).toEqual([
      expect.stringMatching(/^stack\.yml: releases: placement: .*node\.labels\.region == eu/),
    ])
  })
})

describe('a constraint that leaves out a datacenter where the service runs', () => {
  it('is refused for a service of every datacenter kept in one region', () => {
    const broken = withConstraints('images', ['node.labels.role == app', 'node.labels.region == eu'])
    expect(spreadProblems(broken, catalogueJson)).toEqual([
      `stack.yml: images: placement: node.labels.region == eu leaves out nyc3, sfo3, sgp1, where it runs ${everywhere}: remove it`,
    ])
  })

  it('is refused for a release consumer kept to one datacenter of the home region', () => {
    const broken = withConstraints('notifier', [
      'node.labels.role == app',
      'node.labels.region == eu',
      'node.labels.dc == fra1',
    ])
    expect(spreadProblems(broken, catalogueJson)).toEqual([
      `stack.yml: notifier: placement: node.labels.dc == fra1 leaves out ams3, lon1, where it runs ${homeWhere}: remove it`,
    ])
  })

  it('is refused with fewer tasks than datacenters', () => {
    expect(
      spreadProblems(
        changed('nats-exporter', (d) => (d.replicas = 3)),
        catalogueJson
      )
    ).toEqual([`stack.yml: nats-exporter: replicas: must be 6, ${everywhere}, not 3`])
  })
})

describe('one region', () => {
  it('runs every service everywhere: the release consumers then need a task in every datacenter', () => {
    const oneRegion = catalogue.map((dc) => ({ ...dc, region: 'eu', jetstream: true }))
    expect(spreadProblems(stack, oneRegion)).toEqual(
      homeRegionServices.map((s) => `stack.yml: ${s}: replicas: must be 6, ${everywhere}, not 3`)
    )
  })
})
