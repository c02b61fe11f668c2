/**
 * Where the services spread over the datacenters run (images, releases, notifier, the nats-exporter, and any
 * service added later that is neither one datacenter's nor monitoring), against the production catalogue:
 * - in which datacenters is the catalogue's (shared/services.ts servicesOf): across regions the consumers of
 *   the release streams (homeRegionServices) run in the home region only, beside the R3 streams, since each
 *   of a delivery's JetStream round trips across an ocean costs 75-170 ms; every other service everywhere;
 * - a home-region service carries the constraint node.labels.region == <home region> (the label the runbook
 *   gives every node from the catalogue, nodes.ts), and no constraint leaves out a datacenter the service
 *   runs in;
 * - one task per datacenter it runs in: replicas = that count (max_replicas_per_node 1 and the spread over
 *   node.labels.dc are service.ts's).
 * Each problem "stack.yml: <service>: placement|replicas: <what and the fix>". A catalogue that does not
 * validate is left to catalogueProblems.
 */
import { parseCatalogue, type Catalogue } from '#shared/catalogue.ts'
import { homeRegion } from '#shared/regions.ts'
import { serviceNames, servicesOf, type ServiceName } from '#shared/services.ts'
import { deployFiles } from './files.ts'
import { admits, stackNodes } from './nodes.ts'
import { isSpreadService, kindOf } from './service.ts'
import type { Stack } from './stack-file.ts'

const isPlatformService = (kind: string): kind is ServiceName =>
  (serviceNames as readonly string[]).includes(kind)
const normalised = (constraint: string) => constraint.replace(/\s+/g, '')

/** Problems of where each spread service of the stack runs, for the production catalogue. */
export function spreadProblems(stack: Stack, productionCatalogue: unknown): string[] {
  let catalogue: Catalogue
  try {
    catalogue = parseCatalogue(productionCatalogue, deployFiles.catalogue)
  } catch {
    return []
  }
  const home = homeRegion(catalogue).id
  const nodes = stackNodes(stack, catalogue)
  const problems: string[] = []
  for (const [name, svc] of Object.entries(stack.services)) {
    if (!isSpreadService(name)) continue
    const fail = (invariant: string, detail: string) =>
      problems.push(`${deployFiles.stack}: ${name}: ${invariant}: ${detail}`)
    const kind = kindOf(name, svc)
    const runsIn = catalogue
      .filter((dc) => !isPlatformService(kind) || servicesOf(catalogue, dc).includes(kind))
      .map((dc) => dc.id)
    const homeOnly = runsIn.length < catalogue.length
    const where = `one task per datacenter${homeOnly ? ` of the home region ${home}` : ''} (${runsIn.join(', ')} in ${deployFiles.catalogue})`
    const deploy = svc.deploy ?? {}
    const constraints = deploy.placement?.constraints ?? []

    const regionConstraint = `node.labels.region == ${home}`
    if (homeOnly && !constraints.map(normalised).includes(normalised(regionConstraint))) {
      const other = constraints.find((c) => normalised(c).startsWith('node.labels.region'))
      fail(
        'placement',
        `${name} runs in the home region ${home} only, ${where}: ${other === undefined ? 'add the constraint' : `replace the constraint ${other} by`} ${regionConstraint} (a consumer of the release streams pays 75-170 ms on each JetStream round trip across an ocean)`
      )
    } else {
      const leftOut = nodes.filter((node) => runsIn.includes(node.dc) && !admits(constraints, node))
      const culprits = constraints.filter((c) => leftOut.some((node) => !admits([c], node)))
      if (leftOut.length > 0)
        fail(
          'placement',
          `${culprits.join(', ')} leave${culprits.length === 1 ? 's' : ''} out ${leftOut.map((n) => n.dc).join(', ')}, where it runs ${where}: remove ${culprits.length === 1 ? 'it' : 'them'}`
        )
    }
    if ((deploy.mode ?? 'replicated') !== 'replicated' || deploy.replicas !== runsIn.length)
      fail(
        'replicas',
        `must be ${runsIn.length}, ${where}${deploy.replicas === undefined ? '' : `, not ${deploy.replicas}`}`
      )
  }
  return problems
}
