/**
 * The NatsBridge stub a request to a datacenter goes through, and the leg it connects on
 * (steering/legs.ts): one bridge per datacenter, or with the emulated WAN's legs one per (edge
 * location, datacenter).
 */
import type { Context } from 'hono'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import type { AppEnv, Bindings } from '../env.ts'
import { legEndpoints, requestHome } from '../steering/legs.ts'

type BridgeStub = ReturnType<Bindings['NATS_BRIDGE']['getByName']>

/**
 * The NatsBridge that carries this request to `dc`, and the URL it is to connect to (pass it on as
 * the request's `natsWs`). Without legs: `dc`'s own bridge, on `dc`'s own natsWs (`natsWs` undefined).
 */
export function natsBridge(
  c: Context<AppEnv>,
  dc: ReachableDatacenter
): { bridge: BridgeStub; natsWs: string | undefined } {
  const home = requestHome(c)
  if (home === undefined) return { bridge: c.env.NATS_BRIDGE.getByName(dc.id), natsWs: undefined }
  return {
    bridge: c.env.NATS_BRIDGE.getByName(`${home}>${dc.id}`),
    natsWs: legEndpoints(c.get('config'), home, dc).natsWs,
  }
}
