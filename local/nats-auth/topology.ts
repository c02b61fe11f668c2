/**
 * Whom each nats-server of a catalogue connects to (issue #15): one cluster per region, regions joined by
 * gateways (regions.md §1). A server routes only to the servers of its own region and lists every region's
 * servers as gateways (its own region included: a server ignores a gateway to its own cluster, as it
 * ignores its route to itself, so every server of a region gets the same lists). Production's one
 * nats.conf always has its gateway block, even for a single region; the local platform only runs
 * gateways between two regions or more (`hasGateways`). The local platform, the tests and `npm run nats-auth` all derive their route and
 * gateway URLs from this one function; only the addresses differ (`reach`).
 */
import { regionsOf, runsJetStream, type RegionMember } from '#shared/regions.ts'

/** `host:port` of one server's cluster (route) and gateway listeners, as another server dials them. */
export interface NatsListeners {
  cluster: string
  gateway: string
}

/**
 * How the server of datacenter `fromIndex` reaches the listeners of datacenter `toIndex` (catalogue
 * indexes; from === to is the server itself). Locally the target's own address, or a WAN relay's.
 */
export type NatsReach = (fromIndex: number, toIndex: number) => NatsListeners

export interface NatsGateway {
  /** The region id, which is also its cluster's name. */
  name: string
  /** `host:port` of every server of the region's gateway listener. */
  hosts: string[]
}

export interface NatsServerTopology {
  dc: string
  region: string
  /** Whether it runs JetStream (and votes in the meta group). */
  jetstream: boolean
  /** `host:port` of the cluster listener of every server of its region, itself included. */
  routeHosts: string[]
  /** Every region's gateway listeners, in catalogue order (one entry: a single region). */
  gateways: NatsGateway[]
}

/** The topology of the server of datacenter `index` of `catalogue`. */
export function natsServerTopology(
  catalogue: readonly RegionMember[],
  index: number,
  reach: NatsReach
): NatsServerTopology {
  const self = catalogue[index]
  if (!self) throw new RangeError(`no datacenter #${index + 1} in a catalogue of ${catalogue.length}`)
  const indexOf = new Map(catalogue.map((dc, i) => [dc, i]))
  const regions = regionsOf(catalogue)
  const own = regions.find((r) => r.id === self.region)!
  return {
    dc: self.id,
    region: self.region,
    jetstream: runsJetStream(self),
    routeHosts: own.datacenters.map((dc) => reach(index, indexOf.get(dc)!).cluster),
    gateways: regions.map((r) => ({
      name: r.id,
      hosts: r.datacenters.map((dc) => reach(index, indexOf.get(dc)!).gateway),
    })),
  }
}

/** Whether there is another region to connect to. */
export const hasGateways = (t: Pick<NatsServerTopology, 'gateways'>): boolean => t.gateways.length > 1

/** How many servers of the catalogue run JetStream (the account's limits add up their stores). */
export const jetStreamServers = (catalogue: readonly RegionMember[]): number =>
  catalogue.filter(runsJetStream).length
