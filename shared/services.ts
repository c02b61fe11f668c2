import { homeRegion, multiRegion, type RegionMember } from './regions.ts'

/** The backend services every datacenter runs; the supervisor, stack.yml's test and /health agree on this list. */
export const serviceNames = ['web', 'images', 'releases', 'notifier'] as const
export type ServiceName = (typeof serviceNames)[number]

/**
 * The consumers of the release streams. Across regions they run only in the home region, beside the
 * R3 streams and the registry they write: each delivery makes a dozen JetStream round trips (fetch,
 * ack, KV reads and writes, the object store, the announce claim), and run across an ocean each one
 * pays 75-170 ms (issue #15: 1.9 s from New York, 2.9 s from Singapore, against 0.55 s in Europe).
 */
export const homeRegionServices: readonly ServiceName[] = ['releases', 'notifier']

/** The services datacenter `dc` of the catalogue runs: all of them, less the home region's own elsewhere. */
export function servicesOf(
  catalogue: readonly RegionMember[],
  dc: RegionMember,
  services: readonly ServiceName[] = serviceNames
): ServiceName[] {
  if (!multiRegion(catalogue) || dc.region === homeRegion(catalogue).id) return [...services]
  return services.filter((service) => !homeRegionServices.includes(service))
}
