/**
 * The edge's legs to the datacenters: where a request reaches a datacenter from (issue #15).
 *
 * Cloudflare has a location near every client, so a request's way to a datacenter starts near the
 * client: at its edge location (placement/edge-location.ts), on a local run the datacenter or
 * EDGE_LOCATIONS site nearest to it, its home. In production that is simply the network, and every
 * request reaches a datacenter at its own endpoints. On one machine the emulated WAN (`WAN=1 npm
 * start`, local/wan/) gives every (home, target) pair an address of its own that carries the
 * round-trip time between the two (5 ms when they are the same), and the local platform names them in
 * the DATACENTER_LEGS var (validated in config.ts: every home to every datacenter, itself included).
 * With legs, a request from a client at home h reaches the datacenter t it is steered to, or fails
 * over to, at leg (h, t); without, at t's own endpoints, as before.
 *
 * What takes a leg: the web service (http/datacenter.ts, the dashboard route) through `webLeg`, and
 * NATS (images, webhooks, /health/<dc>) through `natsBridge` (nats/bridge-stub.ts). A NatsBridge
 * holds one connection, so with legs a bridge serves one leg: they are per (home, target, shard),
 * named `<home>><target>/<shard>`; without, per (target, edge region, shard), `<target>/<hint>/<shard>`.
 * The health vantages probe over the legs from their sites (steering/health-registry.ts), so a
 * datacenter cut off from one region is seen down from there.
 */
import type { Context } from 'hono'
import type { Endpoints, ReachableDatacenter } from '#shared/catalogue.ts'
import type { EdgeConfig } from '../config.ts'
import type { AppEnv } from '../env.ts'

/** The endpoints at which a client whose home datacenter is `home` reaches `dc`. */
export function legEndpoints(
  config: Pick<EdgeConfig, 'legs'>,
  home: string | undefined,
  dc: ReachableDatacenter
): Endpoints {
  if (!config.legs || home === undefined) return dc.endpoints
  const leg = config.legs.get(home)?.get(dc.id)
  // config.ts refuses legs that miss a pair: reaching here is a bug, never a reason to bypass the WAN.
  if (!leg) throw new Error(`DATACENTER_LEGS has no leg from ${home} to ${dc.id}`)
  return leg
}

/** This request's edge location id when legs are configured; without them none is needed. */
export function requestHome(c: Context<AppEnv>): string | undefined {
  return c.get('config').legs ? c.get('edgeLocation').id : undefined
}

/** The base URL at which this request reaches `dc`'s web service. */
export function webLeg(c: Context<AppEnv>, dc: ReachableDatacenter): string {
  return legEndpoints(c.get('config'), requestHome(c), dc).web
}
