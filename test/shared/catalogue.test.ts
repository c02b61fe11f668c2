import { describe, expect, it } from 'vitest'
import { CatalogueError, parseCatalogue, parseReachableCatalogue } from '#shared/catalogue.ts'
import catalogue from '#shared/datacenters.json' with { type: 'json' }

const entry = (over: Record<string, unknown> = {}) => ({
  id: 'fra',
  name: 'Frankfurt',
  lat: 50.11,
  lon: 8.68,
  ...over,
})

describe('the datacenter catalogue', () => {
  it('ships the three local datacenters of the contract', () => {
    const parsed = parseCatalogue(catalogue, 'shared/datacenters.json')
    expect(parsed.map(({ id, lat, lon }) => ({ id, lat, lon }))).toEqual([
      { id: 'fra', lat: 50.11, lon: 8.68 },
      { id: 'ams', lat: 52.37, lon: 4.9 },
      { id: 'lon', lat: 51.51, lon: -0.13 },
    ])
  })

  it('takes a fourth datacenter with only the required fields', () => {
    const parsed = parseCatalogue(
      [...catalogue, { id: 'nyc', name: 'New York', lat: 40.71, lon: -74.01 }],
      'x'
    )
    expect(parsed.at(-1)).toEqual({ id: 'nyc', name: 'New York', lat: 40.71, lon: -74.01 })
  })

  it.each([
    ['a missing name', [entry({ name: undefined })], 'file.json: [0].name:'],
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
})
