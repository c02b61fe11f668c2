/**
 * The datacenter catalogue: data (`datacenters.json`), validated here once for every reader —
 * the supervisor at start-up, the edge on its first request, the backend services.
 * Adding a datacenter is one entry in the JSON file, never a code change; so is a new region.
 *
 * Regions (issue #15): every datacenter names its `region`; a region's datacenters form one NATS cluster,
 * regions are joined by gateways. `jetstream` (default true) says whether the datacenter's nats-server runs
 * JetStream and so votes in the meta group. The home region, the one holding a strict majority of those
 * voters, keeps the meta quorum and the consistent (R3) streams when an ocean is cut: shared/regions.ts.
 */
import { z } from 'zod'
import { quorumProblem } from './regions.ts'

export const datacenterIdSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{1,15}$/, 'must be 2-16 lowercase letters, digits or dashes')

/** Where a datacenter's services answer. Production entries carry them; `npm start` fills in local ones. */
/** A region id: `eu`, `us`, `ap`; the NATS cluster of the region carries this name. */
export const regionIdSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{1,15}$/, 'must be 2-16 lowercase letters, digits or dashes')

/**
 * Cloudflare's Durable Object location hints (developers.cloudflare.com/durable-objects/reference/
 * data-location): the regions an object can be asked to start in. Objects that serve a datacenter are
 * placed in its region's hint (edge/placement/location-hints.ts derives one from its coordinates).
 */
export const locationHints = ['wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me'] as const
export const locationHintSchema = z.enum(locationHints)
export type LocationHint = z.infer<typeof locationHintSchema>

export const endpointsSchema = z.strictObject({
  /** Base URL of the datacenter's web service (landing page, /health, module registry). */
  web: z.url({ protocol: /^https?$/ }),
  /** WebSocket URL of the datacenter's nats-server, for the edge's NATS bridge. */
  natsWs: z.url({ protocol: /^wss?$/ }),
})

export const datacenterSchema = z.strictObject({
  id: datacenterIdSchema,
  name: z.string().min(1),
  region: regionIdSchema,
  /** Whether its nats-server runs JetStream (a meta-group voter). Default true. */
  jetstream: z.boolean().optional(),
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
  /** 0 takes no new traffic; relative preference otherwise (steering issue). */
  weight: z.number().min(0).optional(),
  /** ISO 3166-1 alpha-2 countries pinned to this datacenter when the client has no coordinates. */
  countries: z.array(z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code')).optional(),
  /** Where objects serving this datacenter start; default: the hint nearest to its coordinates. */
  locationHint: locationHintSchema.optional(),
  endpoints: endpointsSchema.optional(),
})

export const catalogueSchema = z
  .array(datacenterSchema)
  .min(1, 'the catalogue needs at least one datacenter')
  .superRefine((entries, ctx) => {
    const seen = new Set<string>()
    entries.forEach((dc, i) => {
      if (seen.has(dc.id))
        ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate id "${dc.id}"` })
      seen.add(dc.id)
    })
    const problem = quorumProblem(entries)
    if (problem) ctx.addIssue({ code: 'custom', path: [], message: problem })
  })

export type Datacenter = z.infer<typeof datacenterSchema>
export type Endpoints = z.infer<typeof endpointsSchema>
export type Catalogue = z.infer<typeof catalogueSchema>
/** A datacenter whose endpoints are known: what the edge needs to reach it. */
export type ReachableDatacenter = Datacenter & { endpoints: Endpoints }

export class CatalogueError extends Error {
  override name = 'CatalogueError'
}

/** One line per problem, each naming the offending field, e.g. `[1].lat: Too big: expected number to be <=90`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map(
      (issue) =>
        `${
          issue.path
            .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
            .join('')
            .replace(/^\./, '') || '(root)'
        }: ${issue.message}`
    )
    .join('; ')
}

/** Validates parsed JSON as a catalogue; throws a CatalogueError naming `source` and each bad field. */
export function parseCatalogue(data: unknown, source: string): Catalogue {
  const result = catalogueSchema.safeParse(data)
  if (!result.success) throw new CatalogueError(`${source}: ${describeIssues(result.error)}`)
  return result.data
}

/** Like parseCatalogue, but every entry must carry its endpoints (the edge's view). */
export function parseReachableCatalogue(data: unknown, source: string): ReachableDatacenter[] {
  const catalogue = parseCatalogue(data, source)
  const missing = catalogue.findIndex((dc) => !dc.endpoints)
  if (missing >= 0) throw new CatalogueError(`${source}: [${missing}].endpoints: required`)
  return catalogue as ReachableDatacenter[]
}
