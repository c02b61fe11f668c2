/**
 * The edge's legs of `WAN=1 npm start` (local/wan/legs.ts): the contract's address rule, the
 * DATACENTER_LEGS the edge is given, and that the edge's own configuration (edge/config.ts) accepts
 * it as it is; the edge locations without a datacenter the WAN carries (local/wan/edge-locations.ts),
 * given as EDGE_LOCATIONS with their legs, where a client in Dubai enters. Which leg a request takes is
 * test/edge/legs.test.ts's.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { parseCatalogue } from '#shared/catalogue.ts'
import world from '#shared/datacenters.world.json' with { type: 'json' }
import local from '#shared/datacenters.json' with { type: 'json' }
import { wanLegs } from '../../local/wan/legs.ts'
import { wanAddress } from '../../local/wan/address.ts'
import { parseEdgeLocations, wanEdgeLocations, type WanEdgeLocation } from '../../local/wan/edge-locations.ts'
import { loadRttTable } from '../../local/wan/rtt.ts'
import { edgeSpec } from '../../local/platform-specs.ts'
import { localEnv } from '../../local/env.ts'
import { loadEdgeSecrets } from '../../local/edge-secrets.ts'

const worldCatalogue = parseCatalogue(world, 'datacenters.world.json')
const localCatalogue = parseCatalogue(local, 'datacenters.json')

/** The edge's view of its configuration, as far as these tests read it. */
interface EdgeView {
  datacenters: Array<{ id: string }>
  legs?: ReadonlyMap<string, ReadonlyMap<string, { web: string; natsWs: string }>>
  edgeSites: Array<{ id: string }>
}

/** edge/config.ts and the edge location, imported by URL at run time: edge/ is type-checked with the Worker's types. */
const { edgeConfig } = z
  .object({
    edgeConfig: z.custom<(vars: Record<string, unknown>) => EdgeView>((v) => typeof v === 'function'),
  })
  .parse(await import(new URL('../../edge/config.ts', import.meta.url).href))
const { edgeLocationOf } = z
  .object({
    edgeLocationOf: z.custom<
      (request: Request, config: EdgeView & { allowGeoOverride: boolean }) => { id: string }
    >((v) => typeof v === 'function'),
  })
  .parse(await import(new URL('../../edge/placement/edge-location.ts', import.meta.url).href))

const dir = mkdtempSync(join(tmpdir(), 'vtta-wan-legs-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function edgeVars(
  tunables: NodeJS.ProcessEnv,
  endpoints?: (i: number) => { web: string; natsWs: string },
  edgeLocations?: readonly WanEdgeLocation[]
) {
  const { values } = localEnv({}, 'http://127.0.0.1:8787', loadEdgeSecrets(dir).secrets)
  const spec = edgeSpec(worldCatalogue, {
    localDir: dir,
    edgePort: 8787,
    env: values,
    tunables,
    endpoints,
    edgeLocations,
  })
  return z.record(z.string(), z.string()).parse(JSON.parse(spec.env.EDGE_VARS ?? ''))
}

describe('wanAddress: where a client at home h (or datacenter h) reaches datacenter t', () => {
  it('is 127.0.(t+1).(h+2)', () => {
    expect(wanAddress(0, 0)).toBe('127.0.1.2')
    expect(wanAddress(0, 3)).toBe('127.0.4.2')
    expect(wanAddress(3, 0)).toBe('127.0.1.5')
    expect(wanAddress(5, 4)).toBe('127.0.5.7')
    expect(wanAddress(252, 253)).toBe('127.0.254.254')
  })

  it('has no address past the last octet, nor for an index that is not one', () => {
    for (const [h, t] of [
      [253, 0],
      [-1, 0],
      [0, 254],
      [0.5, 0],
    ] as const)
      expect(() => wanAddress(h, t)).toThrow(RangeError)
  })
})

describe('wanLegs: DATACENTER_LEGS for a catalogue', () => {
  it('has every pair of the world, itself included, on the datacenter ports', () => {
    const legs = wanLegs(worldCatalogue)
    const ids = worldCatalogue.map((dc) => dc.id)
    expect(Object.keys(legs)).toEqual(ids)
    for (const home of ids) expect(Object.keys(legs[home]!)).toEqual(ids)
    // A client in New York (home index 3) reaching Frankfurt (0), and its own datacenter.
    expect(legs.nyc!.fra).toEqual({ web: 'http://127.0.1.5:8080', natsWs: 'ws://127.0.1.5:8443' })
    expect(legs.nyc!.nyc).toEqual({ web: 'http://127.0.4.5:8080', natsWs: 'ws://127.0.4.5:8443' })
    expect(legs.fra!.sgp).toEqual({ web: 'http://127.0.6.2:8080', natsWs: 'ws://127.0.6.2:8443' })
  })

  it('has a row for each edge location after the datacenters: a leg to every datacenter, none to itself', () => {
    const ids = worldCatalogue.map((dc) => dc.id)
    const legs = wanLegs(worldCatalogue, [{ id: 'dxb' }, { id: 'jnb' }])
    expect(Object.keys(legs)).toEqual([...ids, 'dxb', 'jnb'])
    for (const location of ['dxb', 'jnb']) expect(Object.keys(legs[location]!)).toEqual(ids)
    // Dubai is source 6, after the six datacenters: it reaches Singapore (5) at 127.0.6.8.
    expect(legs.dxb!.sgp).toEqual({ web: 'http://127.0.6.8:8080', natsWs: 'ws://127.0.6.8:8443' })
    expect(legs.jnb!.fra).toEqual({ web: 'http://127.0.1.9:8080', natsWs: 'ws://127.0.1.9:8443' })
    // The datacenters' rows are as without edge locations.
    expect(Object.fromEntries(ids.map((id) => [id, legs[id]]))).toEqual(wanLegs(worldCatalogue))
  })

  it("is the three-datacenter catalogue's own for it", () => {
    expect(Object.keys(wanLegs(localCatalogue))).toEqual(['fra', 'ams', 'lon'])
    expect(wanLegs(localCatalogue).lon!.ams!.web).toBe('http://127.0.2.4:8080')
  })
})

describe('npm start gives the edge its legs with WAN=1 only', () => {
  it('passes DATACENTER_LEGS with WAN=1, and the edge accepts it', () => {
    const vars = edgeVars({ WAN: '1' })
    expect(JSON.parse(vars.DATACENTER_LEGS ?? '')).toEqual(wanLegs(worldCatalogue))
    const config = edgeConfig(vars)
    expect(config.legs?.size).toBe(6)
    expect(config.legs?.get('sgp')?.get('lon')).toEqual({
      web: 'http://127.0.3.7:8080',
      natsWs: 'ws://127.0.3.7:8443',
    })
  })

  it("passes the WAN's edge locations as EDGE_LOCATIONS with their legs, and the edge enters at them", () => {
    const { locations } = wanEdgeLocations(worldCatalogue)
    const vars = edgeVars({ WAN: '1' }, undefined, locations)
    expect(JSON.parse(vars.EDGE_LOCATIONS ?? '')).toEqual(locations)
    expect(JSON.parse(vars.DATACENTER_LEGS ?? '')).toEqual(wanLegs(worldCatalogue, locations))
    const config = edgeConfig(vars)
    expect(config.edgeSites.map((site) => site.id)).toEqual([
      ...worldCatalogue.map((dc) => dc.id),
      'dxb',
      'jnb',
    ])
    // A client in Dubai enters at dxb, and reaches sgp at dxb's leg to it: the relay's address that
    // carries dxb-sgp's round trip (test/local/wan.test.ts measures it).
    const fromDubai = new Request('http://edge/', { headers: { 'x-client-geo': '25.2,55.27' } })
    const at = edgeLocationOf(fromDubai, { ...config, allowGeoOverride: true })
    expect(at.id).toBe('dxb')
    expect(config.legs?.get(at.id)?.get('sgp')?.web).toBe(
      `http://${wanAddress(
        worldCatalogue.length,
        worldCatalogue.findIndex((dc) => dc.id === 'sgp')
      )}:8080`
    )
    const fromCapeTown = new Request('http://edge/', { headers: { 'x-client-geo': '-33.92,18.42' } })
    expect(edgeLocationOf(fromCapeTown, { ...config, allowGeoOverride: true }).id).toBe('jnb')
  })

  it('passes none without it, nor to an edge whose datacenters are elsewhere (the swarm)', () => {
    expect(edgeVars({})).not.toHaveProperty('DATACENTER_LEGS')
    expect(edgeVars({ WAN: '0' })).not.toHaveProperty('DATACENTER_LEGS')
    const swarm = (i: number) => ({
      web: `http://10.0.0.${i + 2}:8080`,
      natsWs: `wss://10.0.0.${i + 2}:8443`,
    })
    expect(edgeVars({ WAN: '1' }, swarm)).not.toHaveProperty('DATACENTER_LEGS')
    const { locations } = wanEdgeLocations(worldCatalogue)
    expect(edgeVars({}, undefined, locations)).not.toHaveProperty('EDGE_LOCATIONS')
    expect(edgeVars({ WAN: '1' }, swarm, locations)).not.toHaveProperty('EDGE_LOCATIONS')
  })
})

describe('the edge locations the WAN carries (local/wan/edge-locations.ts)', () => {
  const dubai = { id: 'dxb', name: 'Dubai', lat: 25.2, lon: 55.27 }

  it.each([
    ['world', worldCatalogue],
    ['three-datacenter', localCatalogue],
  ])('are Dubai and Johannesburg for the %s catalogue: the table has their every leg', (_, catalogue) => {
    const choice = wanEdgeLocations(catalogue)
    expect(choice.locations.map((l) => l.id)).toEqual(['dxb', 'jnb'])
    expect(choice.locations[0]).toEqual(dubai)
    expect(choice.left).toEqual([])
  })

  it('leaves out, with the reason, a location the table has no figure for, or a datacenter has the id of', () => {
    const withBlr = parseCatalogue(
      [...local, { id: 'blr', name: 'Bangalore', region: 'ap', lat: 12.97, lon: 77.59 }],
      'with blr'
    )
    const choice = wanEdgeLocations(withBlr)
    expect(choice.locations).toEqual([])
    expect(choice.left).toEqual([
      { id: 'dxb', reason: expect.stringMatching(/no round-trip time between dxb and blr/) as unknown },
      { id: 'jnb', reason: expect.stringMatching(/no round-trip time between jnb and blr/) as unknown },
    ])
    const withDubai = parseCatalogue([...local, { ...dubai, region: 'me' }], 'with dxb')
    expect(wanEdgeLocations(withDubai, loadRttTable(), [dubai]).left).toEqual([
      { id: 'dxb', reason: 'the catalogue has a datacenter dxb, whose own legs serve there' },
    ])
  })

  it('refuses a malformed file, naming the field', () => {
    const file = (locations: unknown[]) => ({ locations })
    expect(() => parseEdgeLocations(file([dubai, dubai]), 'x')).toThrow(
      /x: locations\[1\]\.id: "dxb" is given twice/
    )
    expect(() => parseEdgeLocations(file([{ ...dubai, lat: 91 }]), 'x')).toThrow(/locations\[0\]\.lat/)
    expect(() => parseEdgeLocations(file([{ ...dubai, azure: 'UAE North' }]), 'x')).toThrow(/locations\[0\]/)
  })
})
