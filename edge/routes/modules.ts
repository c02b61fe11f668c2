/**
 * The module registry at the edge: `/modules/...` (manifests and zips Foundry downloads) and
 * `/api/modules...`, served by the steered datacenter's web service and cached here as the
 * datacenter says (versioned files immutable; latest manifests and listings at most 60 s, and
 * purged when a release is packaged). ETag and 304 are answered at the edge.
 */
import { Hono, type Context } from 'hono'
import type { AppEnv } from '../env.ts'
import { proxyToDatacenter } from '../datacenter-http.ts'
import { matchesEtag } from '../images/image-cache.ts'

export const modules = new Hono<AppEnv>()

/** The cache key: the URL without its query string (the registry ignores queries; Foundry adds none). */
const cacheKey = (c: Context<AppEnv>) => {
  const url = new URL(c.req.url)
  return new Request(`${url.origin}${url.pathname}`)
}

function withEdgeHeaders(c: Context<AppEnv>, res: Response, xCache: 'HIT' | 'MISS'): Response {
  const headers = new Headers(res.headers)
  headers.delete('cf-cache-status')
  headers.set('x-cache', xCache)
  headers.set('x-request-id', c.get('requestId'))
  headers.set('access-control-allow-origin', '*')
  if (res.status === 200 && matchesEtag(c.req.header('if-none-match'), headers.get('etag'))) {
    headers.delete('content-length')
    return new Response(null, { status: 304, headers })
  }
  return new Response(res.body, { status: res.status, headers })
}

async function cachedFromDatacenter(c: Context<AppEnv>): Promise<Response> {
  const cache = caches.default
  const key = cacheKey(c)
  const hit = await cache.match(key)
  if (hit) return withEdgeHeaders(c, hit, 'HIT')
  // Ask for the full answer: the edge decides about 304 itself, so what it caches is complete.
  const res = await proxyToDatacenter(c, new URL(c.req.url).pathname, { conditional: false })
  if (res.status === 200 && /\b(s-maxage|max-age)=\d+/.test(res.headers.get('cache-control') ?? ''))
    c.executionCtx.waitUntil(cache.put(key, res.clone()))
  return withEdgeHeaders(c, res, 'MISS')
}

modules.get('/modules/*', cachedFromDatacenter)
modules.get('/api/modules', cachedFromDatacenter)
modules.get('/api/modules/*', cachedFromDatacenter)
