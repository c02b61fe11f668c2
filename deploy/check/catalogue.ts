/**
 * deploy/datacenters.production.json, the production catalogue: it validates as the edge reads it (every
 * entry with endpoints) and points at public TLS endpoints named after the datacenter. And one set of
 * datacenters everywhere: the stack's nats-<dc> servers, the servers the auth.conf files of
 * `npm run nats-auth` connect (routes and gateways), and the catalogue itself; those auth.conf files keep
 * each region's cluster inside the region and give every region a gateway entry (topology-check.ts).
 */
import { parseCatalogue, parseReachableCatalogue } from '#shared/catalogue.ts'
import type { RegionMember } from '#shared/regions.ts'
import { natsAuthConfig } from '../../local/nats-auth/auth-config.ts'
import { natsIdentities, type NatsIdentity } from '../../local/nats-auth/credentials.ts'
import { productionAuthFile, productionAuthOptions } from '../../local/nats-auth/command.ts'
import { authTopologyProblems } from '../../local/nats-auth/topology-check.ts'
import { deployFiles } from './files.ts'
import { natsDatacenters } from './service.ts'
import type { Stack } from './stack-file.ts'

export const catalogueFile = deployFiles.catalogue

/**
 * The catalogue's servers as the auth.conf renderer needs them, also from a catalogue that does not
 * validate (whatever entries carry a string id; a missing region reads as none of the others').
 */
const catalogueServers = (data: unknown): RegionMember[] => {
  const entries: unknown[] = Array.isArray(data) ? data : []
  return entries.flatMap((entry) => {
    if (typeof entry !== 'object' || entry === null || !('id' in entry) || typeof entry.id !== 'string')
      return []
    const region = 'region' in entry && typeof entry.region === 'string' ? entry.region : '(no region)'
    const jetstream = 'jetstream' in entry && entry.jetstream === false ? false : undefined
    return [{ id: entry.id, region, jetstream }]
  })
}

/**
 * The auth.conf of every production server by datacenter id, rendered from the catalogue exactly as
 * `npm run nats-auth` renders them (with placeholder keys and passwords: only the topology matters here).
 */
export function productionAuthConfs(productionCatalogue: unknown): Map<string, string> {
  const publicKeys = Object.fromEntries(natsIdentities.map((i) => [i, []])) as unknown as Record<
    NatsIdentity,
    string[]
  >
  return new Map(
    [...productionAuthOptions(catalogueServers(productionCatalogue))].map(([dc, o]) => [
      dc,
      natsAuthConfig({ ...o, publicKeys, routePassword: 'x', gatewayPassword: 'x' }),
    ])
  )
}

/**
 * The datacenters the servers connect to: every server named by the `ROUTES` and `GATEWAYS` of the
 * auth.conf files `npm run nats-auth` writes from the production catalogue (the URLs carry passwords,
 * so nats.conf only says `routes: $ROUTES` and `gateways: $GATEWAYS`), in order of appearance.
 */
export const routedDatacenters = (productionCatalogue: unknown): string[] => {
  const named = new Set<string>()
  for (const conf of productionAuthConfs(productionCatalogue).values()) {
    for (const m of conf.matchAll(/^(?:ROUTES|GATEWAYS): .*$/gm))
      for (const url of m[0].matchAll(/@nats-([a-z][a-z0-9-]*):\d+/g)) named.add(url[1]!)
  }
  return [...named]
}

/**
 * The production servers' topology as `npm run nats-auth` renders it, against the catalogue: a cluster
 * crossing regions or a region without a gateway entry is named (an invalid catalogue is reported by
 * catalogueProblems instead). `confs` defaults to the rendered files; a test passes broken ones.
 */
export function natsTopologyProblems(
  productionCatalogue: unknown,
  confs = productionAuthConfs(productionCatalogue)
): string[] {
  let catalogue
  try {
    catalogue = parseCatalogue(productionCatalogue, catalogueFile)
  } catch {
    return []
  }
  return authTopologyProblems(
    catalogue,
    confs,
    (dc) => `${catalogueFile}: npm run nats-auth's ${productionAuthFile(dc)}`
  )
}

/**
 * Problems of the production catalogue ("deploy/datacenters.production.json: ..."): it must validate as the edge reads it (every entry
 * with endpoints), point at public TLS endpoints named after the datacenter, and make a NATS topology
 * of one cluster per region joined by gateways (natsTopologyProblems).
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
  problems.push(...natsTopologyProblems(data))
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
    ['the routes and gateways of npm run nats-auth', catalogueFile, routedDatacenters(productionCatalogue)],
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
