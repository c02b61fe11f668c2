/**
 * Where Durable Objects are asked to start (issue #16). Cloudflare places an object near its first
 * caller unless that first `get()` names a location hint, and never moves it afterwards; so every
 * object that serves a datacenter (its NATS bridges) or a region (its health vantage) is asked for by
 * name with the hint of the place it serves.
 *
 * Each hint has one representative point here, a large metro of its area, so a hint can be derived
 * from coordinates: a datacenter's own, unless the catalogue sets `locationHint`, and a client's.
 */
import type { Datacenter, LocationHint } from '#shared/catalogue.ts'
import { nearestTo } from '../steering/nearest.ts'

interface HintPoint {
  name: string
  lat: number
  lon: number
}

/** One point per hint of Cloudflare's table (apac-ne/apac-se are in workers-types but not the docs). */
export const hintPoints: Readonly<Record<LocationHint, HintPoint>> = {
  wnam: { name: 'San Francisco Bay', lat: 37.55, lon: -122.1 },
  enam: { name: 'Ashburn', lat: 39.04, lon: -77.49 },
  sam: { name: 'São Paulo', lat: -23.55, lon: -46.63 },
  weur: { name: 'Paris', lat: 48.86, lon: 2.35 },
  eeur: { name: 'Warsaw', lat: 52.23, lon: 21.01 },
  apac: { name: 'Singapore', lat: 1.35, lon: 103.82 },
  oc: { name: 'Sydney', lat: -33.87, lon: 151.21 },
  afr: { name: 'Johannesburg', lat: -26.2, lon: 28.05 },
  me: { name: 'Dubai', lat: 25.2, lon: 55.27 },
}

const hints = Object.keys(hintPoints) as LocationHint[]

/** The hint whose point is nearest to `point`. */
export const nearestHint = (point: { lat: number; lon: number }): LocationHint =>
  nearestTo(hints, point, (hint) => hintPoints[hint])

/** Where objects that serve `dc` start: the catalogue's explicit hint, else the nearest one. */
export function hintOf(dc: Pick<Datacenter, 'lat' | 'lon' | 'locationHint'>): LocationHint {
  return dc.locationHint ?? nearestHint(dc)
}
