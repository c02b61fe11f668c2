/**
 * The WAN lab's edge locations without a datacenter (issue #16): `edge-locations.json` beside this
 * file, data only. Cloudflare has locations where we have no datacenter (Dubai, Johannesburg), and
 * there distance and latency disagree. With the WAN on, the edge is given them as EDGE_LOCATIONS
 * (edge/placement/edge-location.ts: a client enters at the site nearest to it), and every request from
 * one takes its leg to the datacenter (legs.ts), which carries the location's round trip (its row in
 * rtt.json; the file holds where a place is, rtt.json how far it is in time).
 *
 * `wanEdgeLocations` picks those a catalogue's WAN can carry, in the file's order, the one order the
 * relay and the edge are both given: a location is left out, with the reason, when the RTT table lacks
 * its figure to one of the catalogue's datacenters, or when a datacenter of the catalogue has its id
 * (that datacenter's own legs serve its clients).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { datacenterIdSchema, describeIssues, type Catalogue } from '#shared/catalogue.ts'
import { errorMessage } from '#shared/error-message.ts'
import { loadRttTable, type RttTable } from './rtt.ts'

/** One place, as the edge's EDGE_LOCATIONS takes it (edge/config.ts). */
export const wanEdgeLocationSchema = z.strictObject({
  id: datacenterIdSchema,
  name: z.string().min(1).max(64),
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
})

export type WanEdgeLocation = z.infer<typeof wanEdgeLocationSchema>

export const edgeLocationsFileSchema = z.strictObject({
  /** What the places are, for the reader of the file. */
  note: z.string().optional(),
  locations: z.array(wanEdgeLocationSchema).superRefine((locations, ctx) =>
    locations.forEach((location, i) => {
      if (locations.findIndex((l) => l.id === location.id) !== i)
        ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `"${location.id}" is given twice` })
    })
  ),
})

export const defaultEdgeLocationsFile = join(import.meta.dirname, 'edge-locations.json')

export function parseEdgeLocations(data: unknown, source: string): WanEdgeLocation[] {
  const result = edgeLocationsFileSchema.safeParse(data)
  if (!result.success) throw new Error(`${source}: ${describeIssues(result.error)}`)
  return result.data.locations
}

export function loadEdgeLocations(path = defaultEdgeLocationsFile): WanEdgeLocation[] {
  return parseEdgeLocations(JSON.parse(readFileSync(path, 'utf8')), path)
}

/** The edge locations a catalogue's WAN carries, and those left out with the reason. */
export interface EdgeLocationChoice {
  locations: WanEdgeLocation[]
  left: Array<{ id: string; reason: string }>
}

export function wanEdgeLocations(
  catalogue: Catalogue,
  rtt: RttTable = loadRttTable(),
  candidates: readonly WanEdgeLocation[] = loadEdgeLocations()
): EdgeLocationChoice {
  const choice: EdgeLocationChoice = { locations: [], left: [] }
  for (const location of candidates) {
    if (catalogue.some((dc) => dc.id === location.id)) {
      choice.left.push({
        id: location.id,
        reason: `the catalogue has a datacenter ${location.id}, whose own legs serve there`,
      })
      continue
    }
    try {
      for (const dc of catalogue) rtt.rttMs(location.id, dc.id)
      choice.locations.push(location)
    } catch (error) {
      choice.left.push({ id: location.id, reason: errorMessage(error) })
    }
  }
  return choice
}
