/**
 * Where the client is: `request.cf` coordinates, or the `x-client-geo: <lat>,<lon>` header when the
 * ALLOW_GEO_OVERRIDE var allows it (local runs and tests). A malformed header is ignored, not an error.
 */
export interface ClientLocation {
  lat?: number
  lon?: number
  country?: string
  continent?: string
}

const GEO_HEADER = /^\s*(-?\d{1,3}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$/

export function parseGeoHeader(value: string | null | undefined): { lat: number; lon: number } | undefined {
  // Real coordinates fit in a few dozen characters; anything longer is not worth parsing.
  const match = value && value.length <= 64 ? GEO_HEADER.exec(value) : null
  if (!match) return undefined
  const lat = Number(match[1])
  const lon = Number(match[2])
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return undefined
  return { lat, lon }
}

function coordinate(value: unknown, limit: number): number | undefined {
  if (value === undefined || value === null || value === '') return undefined
  const n = Number(value)
  return Number.isFinite(n) && Math.abs(n) <= limit ? n : undefined
}

export function clientLocation(request: Request, allowOverride: boolean): ClientLocation {
  const cf = (request as Request & { cf?: IncomingRequestCfProperties }).cf
  const override = allowOverride ? parseGeoHeader(request.headers.get('x-client-geo')) : undefined
  // An override stands for a client elsewhere: request.cf's country and continent are not its own.
  const location: ClientLocation = override
    ? {}
    : {
        country: typeof cf?.country === 'string' ? cf.country : undefined,
        continent: typeof cf?.continent === 'string' ? cf.continent : undefined,
      }
  const lat = override?.lat ?? coordinate(cf?.latitude, 90)
  const lon = override?.lon ?? coordinate(cf?.longitude, 180)
  if (lat !== undefined && lon !== undefined) Object.assign(location, { lat, lon })
  return location
}
