/**
 * Where the emulated WAN's links listen (issue #15 contract). Datacenter i (0-based, catalogue order)
 * binds 127.0.(i+1).1 (local/addresses.ts); traffic from datacenter f to datacenter t goes to
 * 127.0.(t+1).(f+2) on the target's own port, where the relay holds it for the one-way time of (f, t)
 * and forwards it to 127.0.(t+1).1. f == t is the edge's leg to a client's own datacenter. An edge
 * location without a datacenter (issue #16) is a source only: the k-th (0-based, in the order the relay
 * and the edge are given them) is source n + k, n the catalogue's size. The whole of 127.0.0.0/8 is
 * loopback on Linux, so no address needs configuring.
 */
import { loopbackAddress, ports } from '../addresses.ts'

/**
 * The TCP ports of a datacenter that other datacenters (and the edge) reach: NATS client, routes,
 * gateways, WebSocket (the edge's bridge) and the web service (the edge's requests). Monitoring and
 * the services' internal ports stay inside a datacenter.
 */
export const defaultWanPorts: readonly number[] = [
  ports.natsClient,
  ports.natsCluster,
  ports.natsGateway,
  ports.natsWebSocket,
  ports.services.web,
]

/** The relay address for traffic from source `fromIndex` (a datacenter, then edge locations) to datacenter `toIndex`. */
export function wanAddress(fromIndex: number, toIndex: number): string {
  const target = loopbackAddress(toIndex)
  // The last octet is f + 2 (1 is the datacenter itself), so at most 253 datacenters and edge locations.
  if (!Number.isInteger(fromIndex) || fromIndex < 0 || fromIndex > 252)
    throw new RangeError(
      `no WAN relay address from source #${fromIndex + 1} (a datacenter or an edge location)`
    )
  return target.replace(/\.1$/, `.${fromIndex + 2}`)
}

/**
 * An address of datacenter `index` where nothing listens (the last octet 255 is never a datacenter's
 * nor a relay's): what its nats-server advertises for its route and gateway listeners with the WAN on,
 * so a peer that dials a gossiped address fails at once instead of bypassing the relay (nats-config.ts).
 */
export function unreachableAddress(index: number): string {
  return loopbackAddress(index).replace(/\.1$/, '.255')
}
