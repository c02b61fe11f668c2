/**
 * The round-trip times of the emulated WAN (issues #15, #16): `rtt.json` beside this file, data only.
 * A pair is looked up in either order (RTT is symmetric); the same datacenter on both ends is the
 * client's own leg to its nearest datacenter (`sameDatacenterMs`). A pair the table lacks is an error
 * naming both ids: a new datacenter or edge location needs its row in rtt.json, never code.
 *
 * The rows cover datacenters and the edge locations without one (edge-locations.json). An edge location
 * is only ever a source: its legs go to every datacenter, and it has no leg to itself (`assertCovers`).
 *
 * An entry is measured (a number) or composed (`{ via, ms }`: no figure was to be had, so the round
 * trip of two measured figures through `via`). A composed entry is checked, never computed silently:
 * `ms` must be the sum of its two measured figures, and no other place may give a shorter route, so the
 * file says which figures are measured and the loader refuses one that is not what it claims.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { describeIssues } from '#shared/catalogue.ts'

const ms = z.number().positive().max(10_000)

/** A pair with no figure of its own: the round trip through `via`, whose two figures are measured. */
const composedSchema = z.strictObject({ via: z.string().min(1), ms })

export const rttFileSchema = z.strictObject({
  /** Where the figures come from (provenance: who measured, when, which regions stand in). */
  source: z.string().min(1),
  unit: z.literal('ms'),
  sameDatacenterMs: ms,
  sameDatacenterNote: z.string().optional(),
  /** What a composed entry means, for the reader of the file. */
  composedNote: z.string().optional(),
  /** Each pair once, in either row: `rtt[a][b]`, measured or composed. */
  rtt: z.record(z.string(), z.record(z.string(), z.union([ms, composedSchema]))),
})

export type RttFile = z.infer<typeof rttFileSchema>

/** A pair's round trip; `via` when it is composed rather than measured. */
export interface RttEntry {
  ms: number
  via?: string
}

export const defaultRttFile = join(import.meta.dirname, 'rtt.json')

export class RttTable {
  readonly source: string
  readonly sameDatacenterMs: number
  readonly #pairs = new Map<string, RttEntry>()
  /** Every id a row names. */
  readonly #places = new Set<string>()

  constructor(file: RttFile) {
    this.source = file.source
    this.sameDatacenterMs = file.sameDatacenterMs
    for (const [a, row] of Object.entries(file.rtt))
      for (const [b, value] of Object.entries(row)) {
        if (a === b) throw new Error(`rtt: ${a} to itself is sameDatacenterMs, not a row entry`)
        const entry: RttEntry = typeof value === 'number' ? { ms: value } : value
        const key = pairKey(a, b)
        const known = this.#pairs.get(key)
        if (known !== undefined && (known.ms !== entry.ms || known.via !== entry.via))
          throw new Error(`rtt: ${a}-${b} is given twice, as ${describe(known)} and ${describe(entry)} ms`)
        this.#pairs.set(key, entry)
        this.#places.add(a).add(b)
      }
    for (const [a, row] of Object.entries(file.rtt))
      for (const [b, value] of Object.entries(row))
        if (typeof value !== 'number') this.#checkComposed(a, b, value.via, value.ms)
  }

  /** A composed a-b: both figures through `via` measured, their sum `ms`, and no shorter route. */
  #checkComposed(a: string, b: string, via: string, ms: number): void {
    const name = `rtt: ${a}-${b} via ${via}`
    if (via === a || via === b) throw new Error(`${name}: a route goes through a third place`)
    const measured = (x: string, y: string) => {
      const entry = this.#pairs.get(pairKey(x, y))
      return entry && entry.via === undefined ? entry.ms : undefined
    }
    const first = measured(a, via)
    const second = measured(via, b)
    for (const [x, y, figure] of [
      [a, via, first],
      [via, b, second],
    ] as const)
      if (figure === undefined)
        throw new Error(`${name}: ${x}-${y} is not measured (a composed entry adds two measured figures)`)
    const sum = first! + second!
    if (ms !== sum)
      throw new Error(`${name}: ${a}-${via} ${first} + ${via}-${b} ${second} = ${sum} ms, not ${ms}`)
    for (const other of this.#places) {
      if (other === a || other === b) continue
      const x = measured(a, other)
      const y = measured(other, b)
      if (x !== undefined && y !== undefined && x + y < sum)
        throw new Error(`${name} is ${sum} ms, but via ${other} ${x + y} ms: name the shortest route`)
    }
  }

  /** The round-trip time between two datacenters, or an edge location and a datacenter, in ms. */
  rttMs(a: string, b: string): number {
    return this.entry(a, b).ms
  }

  /** The pair's round trip, and `via` when it is composed rather than measured. */
  entry(a: string, b: string): RttEntry {
    if (a === b) return { ms: this.sameDatacenterMs }
    const value = this.#pairs.get(pairKey(a, b))
    if (value === undefined)
      throw new Error(
        `no round-trip time between ${a} and ${b} in local/wan/rtt.json: add the pair to its table`
      )
    return value
  }

  /** One way: half the round trip. */
  oneWayMs(from: string, to: string): number {
    return this.rttMs(from, to) / 2
  }

  /**
   * Throws, naming the first missing pair, unless every pair of these datacenters has its figure, and
   * every edge location one to each datacenter. An edge location that is also a datacenter is refused:
   * the datacenter's own leg would stand for it.
   */
  assertCovers(datacenters: readonly string[], edgeLocations: readonly string[] = []): void {
    for (const id of edgeLocations)
      if (datacenters.includes(id)) throw new Error(`edge location ${id} is a datacenter too`)
    for (const a of [...datacenters, ...edgeLocations]) for (const b of datacenters) this.rttMs(a, b)
  }
}

const pairKey = (a: string, b: string) => (a < b ? `${a} ${b}` : `${b} ${a}`)
const describe = (entry: RttEntry) => (entry.via ? `${entry.ms} (via ${entry.via})` : String(entry.ms))

export function parseRttFile(data: unknown, source: string): RttTable {
  const result = rttFileSchema.safeParse(data)
  if (!result.success) throw new Error(`${source}: ${describeIssues(result.error)}`)
  return new RttTable(result.data)
}

export function loadRttTable(path = defaultRttFile): RttTable {
  return parseRttFile(JSON.parse(readFileSync(path, 'utf8')), path)
}
