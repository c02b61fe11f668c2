import { describe, expect, it } from 'vitest'
import { steer, distanceKm, clientOrigin, type Availability } from '../../edge/steering/nearest.ts'
import { nearestSite } from '../../edge/placement/edge-location.ts'
import type { ClientLocation } from '../../edge/client-location.ts'
import type { Datacenter } from '#shared/catalogue.ts'
import { cities, local, withNewYork } from './cities.ts'

const order = (
  dcs: Datacenter[],
  client: Parameters<typeof steer>[1],
  available?: (dc: Datacenter) => Availability
) => steer(dcs, client, available).ranked.map((dc) => dc.id)

describe('steering: nearest datacenter by great-circle distance', () => {
  it.each(cities)(
    '%s (%f, %f) goes to %s, and to %s with New York added',
    (_city, lat, lon, nearest, withNyc) => {
      expect(order(local, { lat, lon })[0]).toBe(nearest)
      expect(order(withNewYork, { lat, lon })[0]).toBe(withNyc)
    }
  )

  it('ranks every datacenter, nearest first', () => {
    expect(order(local, { lat: 52.37, lon: 4.9 })).toEqual(['ams', 'lon', 'fra'])
  })

  it('measures real distances', () => {
    expect(distanceKm({ lat: 52.52, lon: 13.4 }, { lat: 48.86, lon: 2.35 })).toBeCloseTo(878, -1)
  })

  it('without coordinates, steers by continent, then by catalogue order', () => {
    expect(order(withNewYork, { country: 'US', continent: 'NA' })[0]).toBe('nyc')
    expect(order(withNewYork, { continent: 'SA' })[0]).toBe('nyc')
    expect(order(withNewYork, { continent: 'EU' })[0]).toBe('fra')
    expect(order(withNewYork, {})).toEqual(['fra', 'ams', 'lon', 'nyc'])
  })

  it('puts a datacenter pinned to the client country first', () => {
    const pinned = local.map((dc) => (dc.id === 'ams' ? { ...dc, countries: ['IE'] } : dc))
    expect(order(pinned, { lat: 53.35, lon: -6.26, country: 'IE' })[0]).toBe('ams')
    expect(order(pinned, { lat: 53.35, lon: -6.26, country: 'GB' })[0]).toBe('lon')
    expect(order(pinned, { country: 'IE' })[0]).toBe('ams')
  })

  it('weights a datacenter: weight 0 takes no new traffic, a higher weight draws from further away', () => {
    const ams0 = local.map((dc) => (dc.id === 'ams' ? { ...dc, weight: 0 } : dc))
    expect(order(ams0, { lat: 52.37, lon: 4.9 })).toEqual(['lon', 'fra'])
    // Brussels: ams 173 km, fra 315 km; with weight 3 fra counts as 105 km.
    expect(order(local, { lat: 50.85, lon: 4.35 })[0]).toBe('ams')
    const fra3 = local.map((dc) => (dc.id === 'fra' ? { ...dc, weight: 3 } : dc))
    expect(order(fra3, { lat: 50.85, lon: 4.35 })[0]).toBe('fra')
  })

  it('chooses only available datacenters', () => {
    expect(order(local, { lat: 52.37, lon: 4.9 }, (dc) => (dc.id === 'ams' ? 'down' : 'available'))).toEqual([
      'lon',
      'fra',
    ])
    expect(
      order(local, { lat: 52.37, lon: 4.9 }, (dc) => (dc.id === 'ams' ? 'drained' : 'available'))
    ).toEqual(['lon', 'fra'])
  })

  it('falls back to the nearest of all when none is available, and says so', () => {
    const result = steer(local, { lat: 52.37, lon: 4.9 }, () => 'down')
    expect(result.fallback).toBe(true)
    expect(result.ranked.map((dc) => dc.id)).toEqual(['ams', 'lon', 'fra'])
    expect(steer(local, { lat: 52.37, lon: 4.9 }).fallback).toBe(false)
  })

  it('keeps a drained datacenter last even then: the operator took it out on purpose', () => {
    const result = steer(local, { lat: 52.37, lon: 4.9 }, (dc) => (dc.id === 'ams' ? 'drained' : 'down'))
    expect(result.fallback).toBe(true)
    expect(result.ranked.map((dc) => dc.id)).toEqual(['lon', 'fra', 'ams'])
  })
})

describe('the edge location on a local run: the site nearest the client, for the WAN legs', () => {
  const home = (dcs: Datacenter[], client: ClientLocation) => nearestSite(dcs, clientOrigin(client)).id

  it.each(cities)(
    '%s (%f, %f) stands at %s, and at %s with New York added',
    (_city, lat, lon, nearest, withNyc) => {
      expect(home(local, { lat, lon })).toBe(nearest)
      expect(home(withNewYork, { lat, lon })).toBe(withNyc)
    }
  )

  it('is the nearest whatever steering prefers: weights and country pins do not move the client', () => {
    const amsOut = local.map((dc) => (dc.id === 'ams' ? { ...dc, weight: 0 } : dc))
    expect(home(amsOut, { lat: 52.37, lon: 4.9 })).toBe('ams')
    // Brussels: ams is nearest; steering would prefer fra at weight 3.
    const fra3 = local.map((dc) => (dc.id === 'fra' ? { ...dc, weight: 3 } : dc))
    expect(home(fra3, { lat: 50.85, lon: 4.35 })).toBe('ams')
    const pinned = local.map((dc) => (dc.id === 'ams' ? { ...dc, countries: ['IE'] } : dc))
    expect(home(pinned, { lat: 53.35, lon: -6.26, country: 'IE' })).toBe('lon')
  })

  it('without coordinates, stands at the nearest to its continent, else at the first of the catalogue', () => {
    expect(home(withNewYork, { continent: 'NA' })).toBe('nyc')
    expect(home(withNewYork, { continent: 'EU' })).toBe('fra')
    expect(home(withNewYork, {})).toBe('fra')
    expect(home([...withNewYork].reverse(), {})).toBe('nyc')
  })

  it('has no site in an empty catalogue', () => {
    expect(() => nearestSite([], undefined)).toThrow(RangeError)
  })
})
