/**
 * Partitions of the emulated WAN: `<LOCAL_DIR>/wan/cuts.json`, the one state the operator's commands
 * (`npm run swarm -- partition|heal`) write and the relay reads.
 *
 *   { "cuts": [ { "between": ["fra", "ams", "lon"], "and": ["nyc", "sfo", "sgp"] } ] }
 *
 * A link between two datacenters is cut, in both directions, when one is in a cut's `between` and the
 * other in its `and`. A datacenter is never cut from itself (the edge's leg to a client's own
 * datacenter stays up). Names given to the commands are a datacenter id or a region id of the catalogue
 * the running platform uses, or an edge location the relay carries; a name that is none is an error
 * naming it.
 *
 * An edge location without a datacenter (issue #16: dxb, jnb) has legs of its own to every datacenter
 * and belongs to no region, so cutting a datacenter or a region never cuts them, whatever is near:
 * `partition eu` leaves Dubai's legs to Europe up (the datacenter's clients lose its links, since
 * their legs are its links; README, the lab's limits). Its legs are cut by naming it:
 * `partition dxb from sgp`, or `partition dxb` for all of them. Two edge locations have no link, so a
 * cut with edge locations on both sides is refused.
 */
import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { datacenterIdSchema, describeIssues } from '#shared/catalogue.ts'

export const cutSchema = z
  .strictObject({
    between: z.array(datacenterIdSchema).min(1),
    and: z.array(datacenterIdSchema).min(1),
  })
  .refine((cut) => !cut.between.some((id) => cut.and.includes(id)), {
    message: 'a datacenter cannot be on both sides of a cut',
  })

export const cutsFileSchema = z.strictObject({ cuts: z.array(cutSchema) })

export type Cut = z.infer<typeof cutSchema>

/** A datacenter as the WAN sees it: its id and, when the catalogue has regions, its region. */
export interface WanDatacenter {
  id: string
  region?: string | undefined
}

export const cutsPath = (localDir: string): string => join(localDir, 'wan', 'cuts.json')

/**
 * Validates cuts.json's content against the running catalogue and edge locations; throws naming the
 * problem.
 */
export function parseCuts(
  data: unknown,
  source: string,
  datacenters: readonly WanDatacenter[],
  edgeLocations: readonly string[] = []
): Cut[] {
  const result = cutsFileSchema.safeParse(data)
  if (!result.success) throw new Error(`${source}: ${describeIssues(result.error)}`)
  const known = new Set([...datacenters.map((dc) => dc.id), ...edgeLocations])
  result.data.cuts.forEach((cut, i) => {
    for (const side of ['between', 'and'] as const)
      for (const id of cut[side])
        if (!known.has(id))
          throw new Error(
            `${source}: cuts[${i}].${side}: unknown datacenter "${id}" (not in the catalogue, nor an edge location)`
          )
    const problem = edgeLocationsOnBothSides(cut, edgeLocations)
    if (problem) throw new Error(`${source}: cuts[${i}]: ${problem}`)
  })
  return result.data.cuts
}

/** Why a cut cannot be, when it has edge locations on both sides: they have no link between them. */
function edgeLocationsOnBothSides(cut: Cut, edgeLocations: readonly string[]): string | undefined {
  const [a, b] = [cut.between, cut.and].map((side) => side.filter((id) => edgeLocations.includes(id)))
  if (a!.length > 0 && b!.length > 0)
    return `${a!.join(', ')} and ${b!.join(', ')} are edge locations: there is no link between them`
  return undefined
}

export function readCutsFile(
  path: string,
  datacenters: readonly WanDatacenter[],
  edgeLocations: readonly string[] = []
): Cut[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    // No file: nothing is cut.
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return []
    throw error
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    throw new Error(`${path}: not JSON (${error instanceof Error ? error.message : String(error)})`)
  }
  return parseCuts(data, path, datacenters, edgeLocations)
}

/** Write-then-rename, so the relay never reads half a file. */
export function writeCutsFile(path: string, cuts: readonly Cut[]): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(`${path}.tmp`, JSON.stringify({ cuts }, null, 2) + '\n')
  renameSync(`${path}.tmp`, path)
}

/** Which ordered pairs are cut: a lookup the relay makes once per change of cuts.json. */
export class CutSet {
  readonly cuts: readonly Cut[]
  readonly #pairs = new Set<string>()

  constructor(cuts: readonly Cut[]) {
    this.cuts = cuts
    for (const cut of cuts)
      for (const a of cut.between)
        for (const b of cut.and) {
          this.#pairs.add(`${a} ${b}`)
          this.#pairs.add(`${b} ${a}`)
        }
  }

  isCut(from: string, to: string): boolean {
    return this.#pairs.has(`${from} ${to}`)
  }
}

/**
 * What a name stands for: a datacenter id, every datacenter of a region, or an edge location (never a
 * datacenter's id: the relay refuses that). A name that is two of these is ambiguous.
 */
export function resolveName(
  name: string,
  datacenters: readonly WanDatacenter[],
  edgeLocations: readonly string[] = []
): string[] {
  const dc = datacenters.find((d) => d.id === name)
  const region = datacenters.filter((d) => d.region === name).map((d) => d.id)
  const location = edgeLocations.includes(name)
  if ([dc !== undefined, region.length > 0, location].filter(Boolean).length > 1)
    throw new Error(`"${name}" names more than one of a datacenter, a region and an edge location: ambiguous`)
  if (dc) return [dc.id]
  if (region.length > 0) return region
  if (location) return [name]
  const regions = [...new Set(datacenters.flatMap((d) => (d.region ? [d.region] : [])))]
  throw new Error(
    `unknown datacenter or region "${name}" (datacenters: ${datacenters.map((d) => d.id).join(', ')}` +
      `${regions.length > 0 ? `; regions: ${regions.join(', ')}` : ''}` +
      `${edgeLocations.length > 0 ? `; edge locations: ${edgeLocations.join(', ')}` : ''})`
  )
}

/**
 * The cuts after `partition <name> [from <fromName>]`: `name`'s datacenters (or edge location) cut from
 * `fromName`'s, or from every other datacenter. A cut already listed is not listed twice.
 */
export function addPartition(
  cuts: readonly Cut[],
  datacenters: readonly WanDatacenter[],
  name: string,
  fromName?: string,
  edgeLocations: readonly string[] = []
): Cut[] {
  const between = resolveName(name, datacenters, edgeLocations)
  const and =
    fromName === undefined
      ? datacenters.map((d) => d.id).filter((id) => !between.includes(id))
      : resolveName(fromName, datacenters, edgeLocations)
  if (and.length === 0) throw new Error(`nothing to cut ${name} from: it is the whole catalogue`)
  const overlap = between.filter((id) => and.includes(id))
  if (overlap.length > 0)
    throw new Error(
      `${name} and ${fromName ?? ''} share ${overlap.join(', ')}: a datacenter cannot be cut from itself`
    )
  const cut: Cut = { between, and }
  const problem = edgeLocationsOnBothSides(cut, edgeLocations)
  if (problem) throw new Error(`cannot cut ${name} from ${fromName ?? ''}: ${problem}`)
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && a.every((id) => b.includes(id))
  const listed = cuts.some(
    (c) => (same(c.between, between) && same(c.and, and)) || (same(c.between, and) && same(c.and, between))
  )
  return listed ? [...cuts] : [...cuts, cut]
}

/** One line per cut, for the operator: `fra, ams, lon  <-/->  nyc, sfo, sgp`. */
export function describeCuts(cuts: readonly Cut[]): string[] {
  if (cuts.length === 0) return ['nothing is cut']
  return cuts.map((c) => `${c.between.join(', ')}  <-/->  ${c.and.join(', ')}`)
}
