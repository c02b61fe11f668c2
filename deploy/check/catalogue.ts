/**
 * deploy/datacenters.production.json, the production catalogue: it validates as the edge reads it (every
 * entry with endpoints) and points at public TLS endpoints named after the datacenter. And one set of
 * datacenters everywhere: the stack's nats-<dc> servers, the routes `npm run nats-auth` writes from the
 * catalogue, and the catalogue itself.
 */
import { parseReachableCatalogue } from '#shared/catalogue.ts'
import { jetStreamLimitsFor, natsAuthConfig } from '../../local/nats-auth/auth-config.ts'
import { natsIdentities, type NatsIdentity } from '../../local/nats-auth/credentials.ts'
import { productionRouteHost, productionServerStores } from '../../local/nats-auth/command.ts'
import { deployFiles } from './files.ts'
import { natsDatacenters } from './service.ts'
import type { Stack } from './stack-file.ts'

export const catalogueFile = deployFiles.catalogue

/**
 * The datacenters the servers route to: the `ROUTES` of the auth.conf files `npm run nats-auth`
 * writes from the production catalogue (route URLs carry the route password, so nats.conf only says
 * `routes: $ROUTES`). Rendered here from the catalogue exactly as the command renders them.
 */
export const routedDatacenters = (productionCatalogue: unknown): string[] => {
  const ids = catalogueIds(productionCatalogue)
  const auth = natsAuthConfig({
    dc: ids[0] ?? 'none',
    publicKeys: Object.fromEntries(natsIdentities.map((i) => [i, []])) as unknown as Record<
      NatsIdentity,
      string[]
    >,
    routePassword: 'x',
    gatewayPassword: 'x',
    routeHosts: ids.map(productionRouteHost),
    limits: jetStreamLimitsFor(ids.length, productionServerStores),
  })
  return [...auth.matchAll(/nats-route:\/\/route:x@nats-([a-z][a-z0-9-]*):6222\b/g)].map(
    (m) => m[1] as string
  )
}

/**
 * Problems of the production catalogue ("deploy/datacenters.production.json: ..."): it must validate as the edge reads it (every entry
 * with endpoints) and point at public TLS endpoints named after the datacenter.
 */
export function catalogueProblems(data: unknown): string[] {
  const problems: string[] = []
  let entries
  try {
    entries = parseReachableCatalogue(data, catalogueFile)
  } catch (error) {
    // The catalogue's own errors start with the file (parseCatalogue's `source`).
    return [error instanceof Error ? error.message : `${catalogueFile}: ${String(error)}`]
  }
  for (const dc of entries) {
    const urls = [
      ['web', dc.endpoints.web, 'https:'],
      ['natsWs', dc.endpoints.natsWs, 'wss:'],
    ] as const
    for (const [key, url, protocol] of urls) {
      const parsed = new URL(url)
      if (parsed.protocol !== protocol)
        problems.push(
          `${catalogueFile}: ${dc.id}: endpoints.${key} must be ${protocol}// in production, not ${url}`
        )
      if (!new RegExp(`(^|[.-])${dc.id}([.-]|$)`).test(parsed.hostname))
        problems.push(
          `${catalogueFile}: ${dc.id}: endpoints.${key} (${url}) must name the datacenter ${dc.id}`
        )
    }
  }
  return problems
}

/** The ids of a catalogue, also of one that does not validate (whatever entries carry a string id). */
export const catalogueIds = (data: unknown): string[] => {
  const entries: unknown[] = Array.isArray(data) ? data : []
  return entries.flatMap((entry) =>
    typeof entry === 'object' && entry !== null && 'id' in entry && typeof entry.id === 'string'
      ? [entry.id]
      : []
  )
}

/**
 * One set of datacenters: the nats-<dc> services, the routes of nats.conf and the production catalogue. Each
 * problem names the file that lacks the datacenter (the routes come from the catalogue).
 */
export function datacenterProblems(stack: Stack, productionCatalogue: unknown): string[] {
  const problems: string[] = []
  const sets: Array<[where: string, file: string, ids: string[]]> = [
    ['stack.yml nats services', deployFiles.stack, natsDatacenters(stack)],
    ['the routes of npm run nats-auth', catalogueFile, routedDatacenters(productionCatalogue)],
    [catalogueFile, catalogueFile, catalogueIds(productionCatalogue)],
  ]
  for (const [where, , ids] of sets) {
    for (const [otherWhere, otherFile, otherIds] of sets) {
      for (const id of ids) {
        if (!otherIds.includes(id))
          problems.push(`${otherFile}: datacenters: ${id} is in ${where} but not in ${otherWhere}`)
      }
    }
  }
  return problems
}
