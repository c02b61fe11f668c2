/**
 * Regions of the datacenter catalogue and the JetStream quorum they must keep (issue #15).
 *
 * NATS runs one cluster per region, joined by gateways, and JetStream's meta group spans them all
 * (regions.md §1). So that losing an ocean loses no quorum, one region — the home region — holds a
 * strict majority of the JetStream servers, and at least three of them, where the R3 release streams and
 * the registry's KV live. Every other region reads mirrors. These rules are checked wherever a catalogue
 * is read (shared/catalogue.ts), so a catalogue that would break them is refused with the reason.
 */

/** What the rules need of a datacenter (the catalogue's entries, before or after validation). */
export interface RegionMember {
  id: string
  region: string
  jetstream?: boolean | undefined
}

/** Consistent streams are R3: the home region needs three JetStream servers. */
export const homeReplicas = 3

export interface Region<D extends RegionMember = RegionMember> {
  id: string
  /** In catalogue order. */
  datacenters: D[]
  /** The datacenters whose nats-server runs JetStream. */
  jetStream: D[]
}

export const runsJetStream = (dc: RegionMember): boolean => dc.jetstream !== false

/** The catalogue's regions in order of first appearance, each with its datacenters in catalogue order. */
export function regionsOf<D extends RegionMember>(catalogue: readonly D[]): Region<D>[] {
  const regions = new Map<string, Region<D>>()
  for (const dc of catalogue) {
    let region = regions.get(dc.region)
    if (!region) regions.set(dc.region, (region = { id: dc.region, datacenters: [], jetStream: [] }))
    region.datacenters.push(dc)
    if (runsJetStream(dc)) region.jetStream.push(dc)
  }
  return [...regions.values()]
}

/**
 * Why the catalogue cannot keep its JetStream quorum through a lost region, or undefined when it can:
 * the home region must hold a strict majority of the JetStream servers and at least three of them.
 */
export function quorumProblem(catalogue: readonly RegionMember[]): string | undefined {
  const regions = regionsOf(catalogue)
  const voters = regions.reduce((n, r) => n + r.jetStream.length, 0)
  if (voters === 0) return 'no datacenter runs JetStream (every "jetstream" is false)'
  const home = regions.find((r) => r.jetStream.length * 2 > voters)
  const tally = regions.map((r) => `${r.id} ${r.jetStream.length}`).join(', ')
  if (!home)
    return `no region holds a strict majority of the ${voters} JetStream servers (${tally}): losing one region could lose the meta quorum; set "jetstream": false on servers outside the home region`
  if (home.jetStream.length < homeReplicas && catalogue.length >= homeReplicas)
    return `home region "${home.id}" has ${home.jetStream.length} JetStream server(s); its R${homeReplicas} streams need ${homeReplicas}`
  return undefined
}

/** The region holding the JetStream majority (the catalogue is assumed valid: see quorumProblem). */
export function homeRegion<D extends RegionMember>(catalogue: readonly D[]): Region<D> {
  const regions = regionsOf(catalogue)
  const voters = regions.reduce((n, r) => n + r.jetStream.length, 0)
  const home = regions.find((r) => r.jetStream.length * 2 > voters)
  if (!home) throw new Error(quorumProblem(catalogue) ?? 'no home region')
  return home
}

/**
 * Where JetStream keeps what (issue #15), as the services are told (JETSTREAM_REPLICAS,
 * JETSTREAM_HOME_REGION, REGISTRY_MIRROR_REGIONS): the consistent streams R3 (fewer in a smaller home
 * region) in the home region; one read mirror of the registry in every other region that runs JetStream.
 * One region: no placement and no mirror, exactly as before regions existed.
 */
export function jetStreamLayout(catalogue: readonly RegionMember[]): {
  replicas: number
  homeRegion: string | undefined
  mirrorRegions: string[]
} {
  const regions = regionsOf(catalogue)
  const home = homeRegion(catalogue)
  const replicas = Math.min(homeReplicas, home.jetStream.length)
  if (regions.length === 1) return { replicas, homeRegion: undefined, mirrorRegions: [] }
  return {
    replicas,
    homeRegion: home.id,
    mirrorRegions: regions.filter((r) => r.id !== home.id && r.jetStream.length > 0).map((r) => r.id),
  }
}

/** Whether the catalogue spans more than one region (memoised per catalogue: the edge asks per request). */
const multiRegionMemo = new WeakMap<readonly RegionMember[], boolean>()
export function multiRegion(catalogue: readonly RegionMember[]): boolean {
  let answer = multiRegionMemo.get(catalogue)
  if (answer === undefined)
    multiRegionMemo.set(catalogue, (answer = new Set(catalogue.map((dc) => dc.region)).size > 1))
  return answer
}
