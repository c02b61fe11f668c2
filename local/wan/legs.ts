/**
 * The edge's legs through the emulated WAN (issue #15 contract). A client whose nearest datacenter is
 * the h-th of the catalogue (0-based) reaches the t-th at 127.0.(t+1).(h+2), on t's own ports: the
 * WAN relay (local/wan/) listening there holds each byte for RTT(h, t)/2 each way (5 ms round trip
 * when h == t, the client's own datacenter) and forwards it to t's own address, 127.0.(t+1).1.
 * `wanLegs` is what `WAN=1 npm start` gives the edge as DATACENTER_LEGS (edge/steering/legs.ts picks
 * the leg per request); the addresses are the relay's own rule (address.ts).
 *
 * Edge locations without a datacenter (issue #16; EDGE_LOCATIONS, the same list in the same order as the
 * relay's) have rows too: a client nearest the k-th reaches datacenter t at 127.0.(t+1).(n+k+2), n the
 * catalogue's size, which carries that location's RTT to t. They are no targets.
 */
import type { Catalogue, Endpoints } from '#shared/catalogue.ts'
import { ports } from '../addresses.ts'
import { wanAddress } from './address.ts'

/**
 * DATACENTER_LEGS for a catalogue: every datacenter to every datacenter, itself included, then every
 * edge location to every datacenter.
 */
export function wanLegs(
  catalogue: Catalogue,
  edgeLocations: readonly { id: string }[] = []
): Record<string, Record<string, Endpoints>> {
  return Object.fromEntries(
    [...catalogue, ...edgeLocations].map((home, h) => [
      home.id,
      Object.fromEntries(
        catalogue.map((target, t) => {
          const host = wanAddress(h, t)
          const leg = {
            web: `http://${host}:${ports.services.web}`,
            natsWs: `ws://${host}:${ports.natsWebSocket}`,
          }
          return [target.id, leg]
        })
      ),
    ])
  )
}
