/** `/`: proxied to the web service of the nearest datacenter; its `x-datacenter` passes through. */
import { Hono } from 'hono'
import type { AppEnv } from '../env.ts'
import { ApiError } from '../errors.ts'
import { clientLocation } from '../client-location.ts'
import { rankDatacenters } from '../steering/nearest.ts'

export const home = new Hono<AppEnv>()

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'x-client-geo']

home.get('/', async (c) => {
  const config = c.get('config')
  const [dc] = rankDatacenters(config.datacenters, clientLocation(c.req.raw, config.allowGeoOverride))
  if (!dc) throw new ApiError(503, 'datacenter_unreachable', 'no datacenter configured')
  const headers = new Headers(c.req.raw.headers)
  for (const name of HOP_BY_HOP) headers.delete(name)
  headers.set('x-request-id', c.get('requestId'))
  let upstream: Response
  try {
    upstream = await fetch(new URL('/', dc.endpoints.web), { headers, redirect: 'manual' })
  } catch (error) {
    throw new ApiError(502, 'datacenter_unreachable', `datacenter ${dc.id} did not answer: ${String(error)}`)
  }
  return new Response(upstream.body, { status: upstream.status, headers: upstream.headers })
})
