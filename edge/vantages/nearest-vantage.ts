/**
 * The vantage that serves a request (issue #16): the one standing nearest to where the request
 * entered the edge. Its view is the requester's regional view of health, and the passive failures
 * the request sees count there.
 *
 * - Where the edge location is a site with coordinates (a datacenter or one of EDGE_LOCATIONS: local
 *   runs), the vantage whose site is nearest to it.
 * - Else (production: a colo, known only by its hint), a vantage whose hint is the location's, else
 *   the one whose site is nearest to the hint's representative point; among vantages sharing the
 *   hint, the same distance decides.
 */
import type { Datacenter } from '#shared/catalogue.ts'
import type { EdgeConfig } from '../config.ts'
import type { EdgeLocation } from '../placement/edge-location.ts'
import { hintPoints } from '../placement/location-hints.ts'
import { nearestTo } from '../steering/nearest.ts'
import { vantagesOf, type Vantage } from './vantage-set.ts'

/** By the config's sites, then edge location id, then its hint: the answer never changes for them. */
const memo = new WeakMap<object, Map<string, Map<string, Vantage>>>()

export function nearestVantage<D extends Datacenter>(
  config: { datacenters: readonly D[]; edgeSites: EdgeConfig['edgeSites'] },
  location: EdgeLocation
): Vantage<D> {
  let byLocation = memo.get(config.edgeSites)
  if (!byLocation) memo.set(config.edgeSites, (byLocation = new Map<string, Map<string, Vantage>>()))
  let byHint = byLocation.get(location.id)
  if (!byHint) byLocation.set(location.id, (byHint = new Map<string, Vantage>()))
  let vantage = byHint.get(location.hint) as Vantage<D> | undefined
  if (!vantage) byHint.set(location.hint, (vantage = choose(config, location)))
  return vantage
}

function choose<D extends Datacenter>(
  config: { datacenters: readonly D[]; edgeSites: EdgeConfig['edgeSites'] },
  location: EdgeLocation
): Vantage<D> {
  const vantages = vantagesOf(config.datacenters)
  const site = config.edgeSites.find((s) => s.id === location.id)
  if (site) return nearestTo(vantages, site, (v) => v.site, 'vantage')
  const sameHint = vantages.filter((v) => v.hint === location.hint)
  return nearestTo(
    sameHint.length > 0 ? sameHint : vantages,
    hintPoints[location.hint],
    (v) => v.site,
    'vantage'
  )
}
