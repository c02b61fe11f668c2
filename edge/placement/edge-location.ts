/**
 * Where a request enters the edge (issue #16): the place whose latency to each datacenter the edge
 * measures, whose leg a request starts on, and whose region's bridges and vantage serve it.
 *
 * - In production, Cloudflare's data center that received the request (`request.cf.colo`), with the
 *   location hint nearest to the client: a client enters at the colo nearest to it.
 * - On a local run (ALLOW_GEO_OVERRIDE or DATACENTER_LEGS), every request arrives at one process, and
 *   Miniflare says "DFW" for all of them; there the edge location is the site nearest to the client's
 *   (overridable) coordinates among the catalogue's datacenters and EDGE_LOCATIONS: Cloudflare has a
 *   location next to each of our datacenters, and some (Dubai, Johannesburg) where we have none.
 */
import type { LocationHint } from '#shared/catalogue.ts'
import type { EdgeConfig } from '../config.ts'
import { clientLocation, type ClientLocation } from '../client-location.ts'
import { clientOrigin, nearestTo } from '../steering/nearest.ts'
import { hintOf, nearestHint } from './location-hints.ts'

export interface EdgeLocation {
  /** A colo (`FRA`, `DXB`) in production; a datacenter's or EDGE_LOCATIONS' id locally. */
  id: string
  /** Where objects serving this location's requests start. */
  hint: LocationHint
  /** Its name, where the edge knows it (local sites). */
  name?: string
}

/** A place with coordinates, a datacenter or one of EDGE_LOCATIONS. */
export interface EdgeSite {
  id: string
  name: string
  lat: number
  lon: number
}

const COLO = /^[A-Z]{3}$/

/** The edge location of a request from `client`. */
export function edgeLocationOf(
  request: Request,
  config: Pick<EdgeConfig, 'datacenters' | 'edgeSites' | 'legs' | 'allowGeoOverride'>,
  client: ClientLocation = clientLocation(request, config.allowGeoOverride)
): EdgeLocation {
  const origin = clientOrigin(client)
  if (config.allowGeoOverride || config.legs) {
    const site = nearestSite(config.edgeSites, origin)
    return { id: site.id, name: site.name, hint: hintOf(site) }
  }
  const colo = (request as Request & { cf?: IncomingRequestCfProperties }).cf?.colo
  const [first] = config.datacenters
  return {
    id: typeof colo === 'string' && COLO.test(colo) ? colo : 'unknown',
    hint: origin ? nearestHint(origin) : first ? hintOf(first) : 'weur',
  }
}

/** The site nearest to `origin`; without one, the first (the catalogue's first datacenter). */
export function nearestSite<S extends EdgeSite>(
  sites: readonly S[],
  origin: { lat: number; lon: number } | undefined
): S {
  const [first] = sites
  if (!first) throw new RangeError('no site to enter the edge at')
  return origin ? nearestTo(sites, origin, (site) => site) : first
}
