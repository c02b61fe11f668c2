/**
 * Where objects are asked to start (edge/placement/location-hints.ts) and where a request enters the
 * edge (edge/placement/edge-location.ts).
 */
import { describe, expect, it } from 'vitest'
import { hintOf, nearestHint } from '../../edge/placement/location-hints.ts'
import { edgeLocationOf } from '../../edge/placement/edge-location.ts'
import { locationHints, type ReachableDatacenter } from '#shared/catalogue.ts'
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

describe('the edge location of a request', () => {
  const datacenters = world.map((dc) => ({ ...dc, endpoints })) as ReachableDatacenter[]
  const dubai = { id: 'dxb', name: 'Dubai', lat: 25.2, lon: 55.27 }
  const local = { datacenters, edgeSites: [...datacenters, dubai], legs: undefined, allowGeoOverride: true }
  const production = { ...local, edgeSites: datacenters, allowGeoOverride: false }
  const request = (headers: Record<string, string>, cf?: Record<string, unknown>) =>
    new Request('https://edge.test/', { headers, ...(cf ? { cf } : {}) })

  it('is, on a local run, the site nearest the client: a datacenter or one of EDGE_LOCATIONS', () => {
    expect(edgeLocationOf(request({ 'x-client-geo': '24.45,54.38' }), local)).toEqual({
      id: 'dxb',
      name: 'Dubai',
      hint: 'me',
    })
    expect(edgeLocationOf(request({ 'x-client-geo': '42.36,-71.06' }), local)).toMatchObject({
      id: 'nyc',
      hint: 'enam',
    })
  })

  it('is, on a local run without coordinates, the first datacenter (Miniflare says DFW for all)', () => {
    expect(edgeLocationOf(request({}, { colo: 'DFW' }), local).id).toBe('fra')
  })

  it('is, in production, the colo that received the request, with the hint nearest the client', () => {
    const cf = { colo: 'DXB', latitude: '25.2', longitude: '55.27' }
    expect(edgeLocationOf(request({ 'x-client-geo': '1.35,103.82' }, cf), production)).toEqual({
      id: 'DXB',
      hint: 'me',
    })
  })

  it('does not take a malformed colo as an id', () => {
    const cf = { colo: 'dxb/../x', latitude: '25.2', longitude: '55.27' }
    expect(edgeLocationOf(request({}, cf), production)).toEqual({ id: 'unknown', hint: 'me' })
  })
})
