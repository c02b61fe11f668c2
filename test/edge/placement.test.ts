/**
 * Where objects are asked to start (edge/placement/location-hints.ts).
 */
import { describe, expect, it } from 'vitest'
import { hintOf, nearestHint } from '../../edge/placement/location-hints.ts'
import { locationHints } from '#shared/catalogue.ts'
import world from '#shared/datacenters.world.json' with { type: 'json' }

const endpoints = { web: 'http://127.0.0.1:9', natsWs: 'ws://127.0.0.1:9' }

describe('location hints', () => {
  it('derives each world datacenter its region: Europe weur, New York enam, San Francisco wnam, Singapore apac', () => {
    expect(Object.fromEntries(world.map((dc) => [dc.id, hintOf(dc)]))).toEqual({
      fra: 'weur',
      ams: 'weur',
      lon: 'weur',
      nyc: 'enam',
      sfo: 'wnam',
      sgp: 'apac',
    })
  })

  it.each([
    ['Sydney', -33.87, 151.21, 'oc'],
    ['Dubai', 25.2, 55.27, 'me'],
    ['Johannesburg', -26.2, 28.05, 'afr'],
    ['São Paulo', -23.55, -46.63, 'sam'],
    ['Warsaw', 52.23, 21.01, 'eeur'],
    ['Toronto', 43.65, -79.38, 'enam'],
  ] as const)('puts %s in %s', (_city, lat, lon, hint) => {
    expect(nearestHint({ lat, lon })).toBe(hint)
  })

  it('lets the catalogue name a hint of its own', () => {
    expect(hintOf({ lat: 50.11, lon: 8.68, locationHint: 'eeur' })).toBe('eeur')
  })

  it('derives only hints Cloudflare documents', () => {
    for (let lat = -80; lat <= 80; lat += 20)
      for (let lon = -180; lon <= 180; lon += 30) expect(locationHints).toContain(nearestHint({ lat, lon }))
  })
})
