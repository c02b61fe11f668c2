/**
 * JetStream across regions (issue #15), against the production catalogue and stack.yml:
 * - the catalogue keeps a home region holding a strict majority of the JetStream servers (the catalogue's
 *   own validation, catalogue.ts) and at least three of them: production's consistent streams are R3;
 * - every stream the release and notifier services create (shared/releases.ts jetStreamPlan) for the
 *   layout their tasks will run with (stack.yml's environment with the mounted catalogue, derived exactly
 *   as the runtime derives it, backend/runtime/catalogue-variables.ts, in every datacenter a task may land
 *   in) is placed in the home region, the registry's read mirrors excepted, and in a region that holds at
 *   least as many JetStream servers as the stream has replicas (R3 in a region of one server cannot be placed).
 * Each problem names the file to fix and the cause.
 */
import { parseCatalogue, type Catalogue } from '#shared/catalogue.ts'
import { homeRegion, homeReplicas, multiRegion, regionsOf } from '#shared/regions.ts'
import { jetStreamPlan, type JetStreamPlanLayout, type PlannedStream } from '#shared/releases.ts'
import { catalogueVariables, CatalogueVariablesError } from '../../backend/runtime/catalogue-variables.ts'
import { deployFiles } from './files.ts'
import { natsDatacenters } from './service.ts'
import type { Stack } from './stack-file.ts'

/** The services that create streams, and the variables of the layout each reads (backend/runtime/config.ts). */
const creators = {
  releases: ['JETSTREAM_REPLICAS', 'JETSTREAM_HOME_REGION', 'REGISTRY_MIRROR_REGIONS'],
  notifier: ['JETSTREAM_REPLICAS', 'JETSTREAM_HOME_REGION'],
} as const
type Creator = keyof typeof creators

const list = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean)

const describePlacement = (s: PlannedStream) =>
  s.placement
    ? `in cluster ${s.placement.cluster ?? '(any)'} (tags ${(s.placement.tags ?? []).join(', ') || 'none'})`
    : 'anywhere'

/**
 * Problems of the JetStream layout. `plan` defaults to the services' own (a test passes a broken one);
 * an invalid catalogue is left to catalogueProblems.
 */
export function jetStreamProblems(
  stack: Stack,
  productionCatalogue: unknown,
  plan: (layout: JetStreamPlanLayout) => PlannedStream[] = jetStreamPlan
): string[] {
  let catalogue: Catalogue
  try {
    catalogue = parseCatalogue(productionCatalogue, deployFiles.catalogue)
  } catch {
    return []
  }
  const problems = new Set<string>()
  const regions = regionsOf(catalogue)
  const home = homeRegion(catalogue)
  const names = (dcs: ReadonlyArray<{ id: string }>) => dcs.map((d) => d.id).join(', ') || 'none'
  if (home.jetStream.length < homeReplicas)
    problems.add(
      `${deployFiles.catalogue}: jetstream: the home region ${home.id} has ${home.jetStream.length} JetStream server(s) (${names(home.jetStream)}): production's R${homeReplicas} streams need ${homeReplicas}`
    )

  for (const [name, svc] of Object.entries(stack.services)) {
    const kind = /backend\/([a-z-]+)\/service\.ts/.exec([svc.command ?? []].flat().join(' '))?.[1]
    if (kind !== 'releases' && kind !== 'notifier') continue
    const creator: Creator = kind
    const fail = (detail: string) => problems.add(`${deployFiles.stack}: ${name}: jetstream: ${detail}`)
    // A task of the service may run in any datacenter: its layout as the runtime derives it there.
    for (const dc of natsDatacenters(stack)) {
      const env = Object.fromEntries(
        Object.entries(svc.environment ?? {}).map(([k, v]) => [k, v?.replaceAll('{{.Node.Hostname}}', dc)])
      )
      let effective: Record<string, string | undefined> = env
      if (env.DATACENTERS_FILE !== undefined) {
        try {
          effective = catalogueVariables(
            env,
            JSON.stringify(productionCatalogue),
            deployFiles.catalogue,
            new Set(creators[creator])
          )
        } catch (error) {
          if (!(error instanceof CatalogueVariablesError)) throw error
          fail(error.message)
          continue
        }
      }
      const layout = {
        replicas: Number(effective.JETSTREAM_REPLICAS ?? 3),
        homeRegion: effective.JETSTREAM_HOME_REGION,
        mirrorRegions: creator === 'releases' ? list(effective.REGISTRY_MIRROR_REGIONS) : [],
      }
      for (const stream of plan(layout).filter((s) => s.creators.includes(creator))) {
        const copies = `R${stream.num_replicas}`
        const target = stream.placement?.cluster
        if (!stream.mirrorOf && multiRegion(catalogue)) {
          const inHome = target === home.id && (stream.placement?.tags ?? []).includes(`region:${home.id}`)
          if (!inHome)
            fail(
              `${stream.stream} (${copies}) would be placed ${describePlacement(stream)}, not in the home region ${home.id} (cluster ${home.id}, tag region:${home.id}): its RAFT group could cross an ocean; JETSTREAM_HOME_REGION is ${JSON.stringify(layout.homeRegion ?? null)}`
            )
        }
        if (stream.mirrorOf && target === home.id)
          fail(
            `${stream.stream}, a read mirror of ${stream.mirrorOf}, is placed in the home region ${home.id}`
          )
        // The servers that can hold it: its region's JetStream servers (the whole catalogue's, unplaced).
        const region = target === undefined ? undefined : regions.find((r) => r.id === target)
        if (target !== undefined && !region) {
          fail(
            `${stream.stream} (${copies}) is placed in cluster ${target}, which is no region of the catalogue`
          )
          continue
        }
        const servers = region ? region.jetStream : catalogue.filter((d) => d.jetstream !== false)
        if (servers.length < stream.num_replicas)
          fail(
            `${stream.stream} is ${copies} ${region ? `in region ${region.id}` : 'unplaced'}, which has ${servers.length} JetStream server(s) (${names(servers)}): nats-server cannot place ${stream.num_replicas} replicas there`
          )
      }
    }
  }
  return [...problems]
}
