import { describe, expect, it } from 'vitest'
import { CatalogueError, parseCatalogue, parseReachableCatalogue } from '#shared/catalogue.ts'
import catalogue from '#shared/datacenters.json' with { type: 'json' }
import world from '#shared/datacenters.world.json' with { type: 'json' }
import { homeRegion, jetStreamLayout, regionsOf } from '#shared/regions.ts'

const entry = (over: Record<string, unknown> = {}) => ({
  id: 'fra',
  name: 'Frankfurt',
  region: 'eu',
  lat: 50.11,
  lon: 8.68,
  ...over,
})

describe('the datacenter catalogue', () => {
  it('ships the three local datacenters of the contract', () => {
    const parsed = parseCatalogue(catalogue, 'shared/datacenters.json')
    expect(parsed.map(({ id, region, lat, lon }) => ({ id, region, lat, lon }))).toEqual([
      { id: 'fra', region: 'eu', lat: 50.11, lon: 8.68 },
      { id: 'ams', region: 'eu', lat: 52.37, lon: 4.9 },
      { id: 'lon', region: 'eu', lat: 51.51, lon: -0.13 },
    ])
    expect(homeRegion(parsed).id).toBe('eu')
  })

  it('takes a fourth datacenter with only the required fields', () => {
    const parsed = parseCatalogue(
      [...catalogue, { id: 'nyc', name: 'New York', region: 'us', lat: 40.71, lon: -74.01 }],
      'x'
    )
    expect(parsed.at(-1)).toEqual({ id: 'nyc', name: 'New York', region: 'us', lat: 40.71, lon: -74.01 })
  })

  it.each([
    ['a missing name', [entry({ name: undefined })], 'file.json: [0].name:'],
    ['a missing region', [entry({ region: undefined })], '[0].region:'],
    ['a region with capitals', [entry({ region: 'EU' })], '[0].region: must be'],
    ['a jetstream flag that is not a boolean', [entry({ jetstream: 'yes' })], '[0].jetstream:'],
    ['a missing latitude', [entry({ lat: undefined })], '[0].lat:'],
    ['no coordinates at all', [entry({ lat: undefined, lon: undefined })], '[0].lon:'],
    ['a latitude out of range', [entry({ lat: -91 })], '[0].lat: Too small'],
    ['a longitude out of range', [entry({ lon: 180.5 })], '[0].lon: Too big'],
    ['a negative weight', [entry({ weight: -1 })], '[0].weight: Too small'],
    ['duplicate ids', [entry(), entry({ name: 'Again' })], '[1].id: duplicate id "fra"'],
    ['an id with capitals', [entry({ id: 'FRA' })], '[0].id: must be'],
    ['an unknown field', [entry({ latitude: 50 })], '[0]: Unrecognized key: "latitude"'],
    ['a bad country code', [entry({ countries: ['Germany'] })], '[0].countries[0]'],
    ['an empty list', [], 'at least one datacenter'],
    ['not a list', { fra: entry() }, '(root)'],
  ])('rejects %s, naming the field', (_case, data, named) => {
    expect(() => parseCatalogue(data, 'file.json')).toThrow(CatalogueError)
    expect(() => parseCatalogue(data, 'file.json')).toThrow(named)
  })

  it('requires endpoints where the edge needs to reach a datacenter', () => {
    expect(() => parseReachableCatalogue([entry()], 'DATACENTERS')).toThrow(
      'DATACENTERS: [0].endpoints: required'
    )
    expect(() =>
      parseReachableCatalogue(
        [entry({ endpoints: { web: 'ftp://x', natsWs: 'ws://127.0.0.1:1' } })],
        'DATACENTERS'
      )
    ).toThrow('[0].endpoints.web')
  })

  it('ships the world: six datacenters in three regions, Europe holding the JetStream majority', () => {
    const parsed = parseCatalogue(world, 'shared/datacenters.world.json')
    expect(
      regionsOf(parsed).map((r) => [r.id, r.datacenters.map((dc) => dc.id), r.jetStream.length])
    ).toEqual([
      ['eu', ['fra', 'ams', 'lon'], 3],
      ['us', ['nyc', 'sfo'], 1],
      ['ap', ['sgp'], 1],
    ])
    expect(homeRegion(parsed).id).toBe('eu')
    // Its first three entries are the local default, so a world platform is the default one plus three.
    expect(parsed.slice(0, 3)).toEqual(parseCatalogue(catalogue, 'x'))
  })

  const dc = (id: string, region: string, jetstream?: boolean) => ({
    ...entry({ id, region }),
    ...(jetstream === undefined ? {} : { jetstream }),
  })

  it.each([
    [
      'Europe with no majority of the JetStream servers (every server votes)',
      [dc('fra', 'eu'), dc('ams', 'eu'), dc('lon', 'eu'), dc('nyc', 'us'), dc('sfo', 'us'), dc('sgp', 'ap')],
      'no region holds a strict majority of the 6 JetStream servers (eu 3, us 2, ap 1)',
    ],
    [
      'a home region with one server and R3 streams',
      [dc('fra', 'eu'), dc('nyc', 'us', false), dc('sfo', 'us', false)],
      'home region "eu" has 1 JetStream server(s); its R3 streams need 3',
    ],
    ['no JetStream server at all', [dc('fra', 'eu', false)], 'no datacenter runs JetStream'],
  ])('refuses %s, naming the cause', (_case, data, named) => {
    expect(() => parseCatalogue(data, 'file.json')).toThrow(CatalogueError)
    expect(() => parseCatalogue(data, 'file.json')).toThrow(`file.json: (root): ${named}`)
  })

  it('takes a new region as data: a fourth region with one non-voting server', () => {
    const parsed = parseCatalogue([...world, dc('blr', 'in', false)], 'x')
    expect(regionsOf(parsed).map((r) => r.id)).toEqual(['eu', 'us', 'ap', 'in'])
    expect(homeRegion(parsed).id).toBe('eu')
  })

  it('keeps a catalogue smaller than one R3 group valid (one or two datacenters run R1 or R2)', () => {
    expect(homeRegion(parseCatalogue([dc('fra', 'eu')], 'x')).id).toBe('eu')
    expect(homeRegion(parseCatalogue([dc('fra', 'eu'), dc('ams', 'eu')], 'x')).jetStream).toHaveLength(2)
  })

  it('lays JetStream out from the regions: R3 at home, a registry mirror in each other region with JetStream', () => {
    expect(jetStreamLayout(parseCatalogue(catalogue, 'x'))).toEqual({
      replicas: 3,
      homeRegion: undefined,
      mirrorRegions: [],
    })
    expect(jetStreamLayout(parseCatalogue(world, 'x'))).toEqual({
      replicas: 3,
      homeRegion: 'eu',
      mirrorRegions: ['us', 'ap'],
    })
    // A region without a JetStream server has nowhere to keep a mirror: its reads cross the gateway.
    const noAp = world.map((d) => (d.region === 'ap' ? { ...d, jetstream: false } : d))
    expect(jetStreamLayout(parseCatalogue(noAp, 'x')).mirrorRegions).toEqual(['us'])
    expect(jetStreamLayout(parseCatalogue([dc('fra', 'eu'), dc('ams', 'eu')], 'x')).replicas).toBe(2)
  })
})
