/**
 * The round-trip times of the emulated WAN (issue #15): `rtt.json` beside this file, data only. A pair
 * is looked up in either order (RTT is symmetric); the same datacenter on both ends is the client's
 * own leg to its nearest datacenter (`sameDatacenterMs`). A pair the table lacks is an error naming
 * both ids: a new datacenter needs its row in rtt.json, never code.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { describeIssues } from '#shared/catalogue.ts'

const ms = z.number().positive().max(10_000)

export const rttFileSchema = z.strictObject({
  /** Where the figures come from (provenance: who measured, when, which regions stand in). */
  source: z.string().min(1),
  unit: z.literal('ms'),
  sameDatacenterMs: ms,
  sameDatacenterNote: z.string().optional(),
  /** Each pair once, in either row: `rtt[a][b]`. */
  rtt: z.record(z.string(), z.record(z.string(), ms)),
})

export type RttFile = z.infer<typeof rttFileSchema>

export const defaultRttFile = join(import.meta.dirname, 'rtt.json')

export class RttTable {
  readonly source: string
  readonly sameDatacenterMs: number
  readonly #pairs = new Map<string, number>()

  constructor(file: RttFile) {
    this.source = file.source
    this.sameDatacenterMs = file.sameDatacenterMs
    for (const [a, row] of Object.entries(file.rtt))
      for (const [b, value] of Object.entries(row)) {
        if (a === b) throw new Error(`rtt: ${a} to itself is sameDatacenterMs, not a row entry`)
        const key = pairKey(a, b)
        const known = this.#pairs.get(key)
        if (known !== undefined && known !== value)
          throw new Error(`rtt: ${a}-${b} is given twice, as ${known} and ${value} ms`)
        this.#pairs.set(key, value)
      }
  }

  /** The round-trip time between two datacenters, in ms (a and b in either order). */
  rttMs(a: string, b: string): number {
    if (a === b) return this.sameDatacenterMs
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

  /** Throws, naming the first missing pair, unless every pair of these datacenters has its figure. */
  assertCovers(ids: readonly string[]): void {
    for (const a of ids) for (const b of ids) this.rttMs(a, b)
  }
}

const pairKey = (a: string, b: string) => (a < b ? `${a} ${b}` : `${b} ${a}`)

export function parseRttFile(data: unknown, source: string): RttTable {
  const result = rttFileSchema.safeParse(data)
  if (!result.success) throw new Error(`${source}: ${describeIssues(result.error)}`)
  return new RttTable(result.data)
}

export function loadRttTable(path = defaultRttFile): RttTable {
  return parseRttFile(JSON.parse(readFileSync(path, 'utf8')), path)
}
