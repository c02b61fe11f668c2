/**
 * The edge's configuration, from wrangler vars, validated with the shared catalogue schema.
 * A Worker has no start-up hook, so it is validated on first use and memoised per isolate;
 * a bad value answers every request with a 500 that names the field.
 */
import { parseReachableCatalogue, type ReachableDatacenter } from '../shared/catalogue.ts'
import type { Bindings } from './env.ts'

export interface EdgeConfig {
  datacenters: ReachableDatacenter[]
  byId: Map<string, ReachableDatacenter>
  allowGeoOverride: boolean
}

export class EdgeConfigError extends Error {
  override name = 'EdgeConfigError'
}

let memo: { source: Bindings['DATACENTERS']; allow: string | undefined; config: EdgeConfig } | undefined

export function edgeConfig(env: Pick<Bindings, 'DATACENTERS' | 'ALLOW_GEO_OVERRIDE'>): EdgeConfig {
  if (memo && memo.source === env.DATACENTERS && memo.allow === env.ALLOW_GEO_OVERRIDE) return memo.config
  let data: unknown
  try {
    data = JSON.parse(env.DATACENTERS ?? '')
  } catch {
    throw new EdgeConfigError('DATACENTERS: not valid JSON')
  }
  let datacenters: ReachableDatacenter[]
  try {
    datacenters = parseReachableCatalogue(data, 'DATACENTERS')
  } catch (error) {
    throw new EdgeConfigError((error as Error).message)
  }
  const config: EdgeConfig = {
    datacenters,
    byId: new Map(datacenters.map((dc) => [dc.id, dc])),
    allowGeoOverride: env.ALLOW_GEO_OVERRIDE === 'true',
  }
  memo = { source: env.DATACENTERS, allow: env.ALLOW_GEO_OVERRIDE, config }
  return config
}
