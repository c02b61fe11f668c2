/**
 * Reads back the topology that production auth.conf files carry (CLUSTER_NAME, REGION_TAG, JETSTREAM,
 * ROUTES, GATEWAYS: auth-config.ts writes each on one line) and holds it against the catalogue: every
 * server routes to exactly its own region's servers (a route across regions would stretch one RAFT group
 * over an ocean), names its region as cluster and tag, runs JetStream as the catalogue says, and lists
 * every region as a gateway with every server of it (a region missing there is cut off from the others).
 * `npm run nats-auth` and `npm run check:deploy` both run it; each problem names the file and the cause.
 */
import { z } from 'zod'
import { regionsOf, runsJetStream, type RegionMember } from '#shared/regions.ts'

/** Where a production server's listeners are: the Swarm service nats-<dc> on the overlay. */
export const productionListeners = (dc: string) => ({
  cluster: `nats-${dc}:6222`,
  gateway: `nats-${dc}:7222`,
})

const serverOfUrl = (url: string): string | undefined => /@nats-([a-z][a-z0-9-]*):\d+$/.exec(url)?.[1]

const variable = <T extends z.ZodType>(conf: string, name: string, schema: T): z.infer<T> | undefined => {
  const line = new RegExp(`^${name}: (.*)$`, 'm').exec(conf)?.[1]
  if (line === undefined) return undefined
  try {
    const parsed = schema.safeParse(JSON.parse(line))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

const gatewaysSchema = z.array(z.strictObject({ name: z.string(), urls: z.array(z.string()) }))

/** The server ids a list of URLs names (`…@nats-<dc>:<port>`), in order. */
const serversOf = (urls: readonly string[]) => urls.map((u) => serverOfUrl(u) ?? u)

/**
 * Problems of the auth.conf of each datacenter (`confs`, by datacenter id) against `catalogue`, each
 * "<file of dc>: <detail>".
 */
export function authTopologyProblems(
  catalogue: readonly RegionMember[],
  confs: ReadonlyMap<string, string>,
  fileOf: (dc: string) => string
): string[] {
  const problems: string[] = []
  const regions = regionsOf(catalogue)
  const regionOf = new Map(catalogue.map((dc) => [dc.id, dc.region]))
  for (const dc of catalogue) {
    const fail = (detail: string) => problems.push(`${fileOf(dc.id)}: ${detail}`)
    const conf = confs.get(dc.id)
    if (conf === undefined) {
      fail(`no auth.conf for nats-${dc.id}`)
      continue
    }
    const cluster = variable(conf, 'CLUSTER_NAME', z.string())
    if (cluster !== dc.region)
      fail(`CLUSTER_NAME must be the region of ${dc.id}, "${dc.region}", not ${JSON.stringify(cluster)}`)
    const tag = variable(conf, 'REGION_TAG', z.string())
    if (tag !== `region:${dc.region}`)
      fail(`REGION_TAG must be "region:${dc.region}", not ${JSON.stringify(tag)}`)
    const jetstream = variable(conf, 'JETSTREAM', z.boolean())
    if (jetstream !== runsJetStream(dc))
      fail(`JETSTREAM must be ${String(runsJetStream(dc))} as the catalogue says for ${dc.id}`)

    const own = regions.find((r) => r.id === dc.region)!.datacenters.map((d) => d.id)
    const routes = variable(conf, 'ROUTES', z.array(z.string()))
    if (!routes) fail('ROUTES is missing or not a list of URLs')
    else {
      for (const peer of serversOf(routes)) {
        const region = regionOf.get(peer)
        if (region !== dc.region)
          fail(
            `nats-${dc.id} (region ${dc.region}) routes to ${peer}${region ? ` in region ${region}` : ', which is in no region'}: a cluster must stay inside its region (regions meet through gateways)`
          )
      }
      const missing = own.filter((id) => !serversOf(routes).includes(id))
      if (missing.length > 0)
        fail(`nats-${dc.id} has no route to ${missing.join(', ')} of its region ${dc.region}`)
    }

    const gateways = variable(conf, 'GATEWAYS', gatewaysSchema)
    if (!gateways) {
      fail('GATEWAYS is missing or not a list of { name, urls }')
      continue
    }
    for (const region of regions) {
      const entry = gateways.find((g) => g.name === region.id)
      if (!entry) {
        fail(
          `region ${region.id} (${region.datacenters.map((d) => d.id).join(', ')}) has no gateway entry: nats-${dc.id} cannot reach it`
        )
        continue
      }
      const servers = serversOf(entry.urls)
      const absent = region.datacenters.filter((d) => !servers.includes(d.id)).map((d) => d.id)
      if (absent.length > 0) fail(`the gateway entry of region ${region.id} lacks ${absent.join(', ')}`)
      for (const s of servers.filter((s) => regionOf.get(s) !== region.id))
        fail(`the gateway entry of region ${region.id} names ${s}, which is not in ${region.id}`)
    }
    for (const g of gateways.filter((g) => !regions.some((r) => r.id === g.name)))
      fail(`gateway entry ${g.name} is no region of the catalogue`)
  }
  return problems
}
