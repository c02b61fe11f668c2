/**
 * The NatsBridge a request to a datacenter goes through (issue #16), and the leg it connects on.
 *
 * A bridge is one Durable Object: single-threaded, placed where its first `get()` asks, never moved.
 * So a datacenter's bridges are asked for with the location hint of the datacenter's region
 * (placement/location-hints.ts `hintOf`): the NATS connection is held next to the datacenter, and
 * the leg from the edge to the object is the one Cloudflare carries on its own network. And there
 * are several of them, so that no object carries a datacenter's traffic from every continent:
 *
 * - per edge region: the hint of the request's edge location (placement/edge-location.ts);
 * - per shard within it: `shardOf(shardKey, BRIDGE_SHARDS)` (nats/shard.ts). The caller picks the
 *   key: images the cache key URL, so identical misses from one edge region still meet in one object
 *   and collapse there (NatsBridge.requestStream); webhooks the delivery's message id; /health/<dc>
 *   the request id.
 *
 * Names: `<dc>/<edge hint>/<shard>` (`fra/apac/1`). With the emulated WAN's legs (DATACENTER_LEGS,
 * steering/legs.ts) a bridge holds the connection of one leg, so it is one per (edge location,
 * datacenter, shard): `<edge location>><dc>/<shard>` (`dxb>sgp/0`), connecting on that leg's natsWs.
 * A new name is also what makes a hint take effect: objects of the old names keep their old places.
 */
import type { Context } from 'hono'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import type { AppEnv, Bindings } from '../env.ts'
import type { EdgeLocation } from '../placement/edge-location.ts'
import { hintOf } from '../placement/location-hints.ts'
import { legEndpoints, requestHome } from '../steering/legs.ts'
import { shardOf } from './shard.ts'

type BridgeStub = ReturnType<Bindings['NATS_BRIDGE']['getByName']>

export interface BridgeOfRequest {
  bridge: BridgeStub
  /** The URL the bridge is to connect to (pass it on as the request's `natsWs`); undefined: `dc`'s own. */
  natsWs: string | undefined
  /** The bridge's name, for logs and tests. */
  name: string
}

/** The name of shard `shard` of `dc`'s bridges for requests entering at `edge`; `legs`: the WAN lab's. */
export function bridgeName(
  dc: Pick<ReachableDatacenter, 'id'>,
  edge: EdgeLocation,
  shard: number,
  legs: boolean
): string {
  return legs ? `${edge.id}>${dc.id}/${shard}` : `${dc.id}/${edge.hint}/${shard}`
}

/** The NatsBridge that carries this request, keyed by `shardKey`, to `dc`. */
export function natsBridge(c: Context<AppEnv>, dc: ReachableDatacenter, shardKey: string): BridgeOfRequest {
  const config = c.get('config')
  const home = requestHome(c)
  const name = bridgeName(
    dc,
    c.get('edgeLocation'),
    shardOf(shardKey, config.bridgeShards),
    home !== undefined
  )
  return {
    bridge: c.env.NATS_BRIDGE.getByName(name, { locationHint: hintOf(dc) }),
    natsWs: home === undefined ? undefined : legEndpoints(config, home, dc).natsWs,
    name,
  }
}
