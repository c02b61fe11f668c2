/**
 * The module registry at the edge: `/modules/...` (manifests and zips Foundry downloads) and
 * `/api/modules...`, served by the steered datacenter's web service and cached here as the
 * datacenter says (versioned files immutable; latest manifests and listings at most 60 s, and
 * purged when a release is packaged). ETag and 304 are answered at the edge.
 *
 * Only a GET's complete answer is ever cached: a HEAD is answered from the GET's cache entry, or
 * fetched upstream as a GET (cached as such) and answered without its body; a body is stored only
 * when its length is exactly the content-length it came with (a cut or padded one is not kept).
 */
import { Hono, type Context } from 'hono'
import type { AppEnv } from '../env.ts'
import { proxyToDatacenter } from '../http/datacenter.ts'
import { cachedAnswer, type CacheStatus } from '../http/cache-headers.ts'

export const modules = new Hono<AppEnv>()

/** The cache key: the URL without its query string (the registry ignores queries; Foundry adds none). */
const cacheKey = (c: Context<AppEnv>) => {
  const url = new URL(c.req.url)
  return new Request(`${url.origin}${url.pathname}`)
}

/** The edge's answer (http/cache-headers.ts), readable from any origin. */
function withEdgeHeaders(c: Context<AppEnv>, res: Response, xCache: CacheStatus): Promise<Response> {
  const headers = new Headers(res.headers)
  headers.set('access-control-allow-origin', '*')
  return cachedAnswer(c, { status: res.status, headers, body: res.body }, xCache)
}

/**
 * The body, checked on its way into the cache: the stream errors (so `cache.put` rejects and
 * nothing is stored) as soon as it runs past `expected` bytes, or when it ends short of it.
 */
export function exactLength(body: ReadableStream<unknown>, expected: number): ReadableStream<Uint8Array> {
  let seen = 0
  const mismatch = () => new Error(`body length ${seen} does not match content-length ${expected}`)
  return body.pipeThrough(
    new TransformStream<unknown, Uint8Array>({
      transform(chunk, controller) {
        // A fetched body's chunks are bytes; anything else cannot be what was declared.
        if (!(chunk instanceof Uint8Array))
          return controller.error(new TypeError('a body chunk is not bytes'))
        seen += chunk.byteLength
        if (seen > expected) controller.error(mismatch())
        else controller.enqueue(chunk)
      },
      flush(controller) {
        if (seen !== expected) controller.error(mismatch())
      },
    })
  )
}

/** The declared length of a cacheable answer (200, cache-control with a max-age), else null. */
function cacheableLength(res: Response): number | null {
  if (res.status !== 200 || res.body === null) return null
  if (!/\b(s-maxage|max-age)=\d+/.test(res.headers.get('cache-control') ?? '')) return null
  const length = res.headers.get('content-length')
  return length !== null && /^\d{1,15}$/.test(length) ? Number(length) : null
}

const withBody = (res: Response, body: ReadableStream<Uint8Array> | null) =>
  new Response(body, { status: res.status, headers: res.headers })

/** Stores in the background; a refused put (a body of the wrong length) just leaves no entry. */
function store(
  c: Context<AppEnv>,
  key: Request,
  res: Response,
  body: ReadableStream<unknown>,
  length: number
) {
  c.executionCtx.waitUntil(
    caches.default.put(key, withBody(res, exactLength(body, length))).catch((error: unknown) =>
      console.log(
        JSON.stringify({
          level: 'warn',
          requestId: c.get('requestId'),
          msg: 'not cached',
          path: new URL(key.url).pathname,
          error: String(error),
        })
      )
    )
  )
}

async function cachedFromDatacenter(c: Context<AppEnv>): Promise<Response> {
  const key = cacheKey(c)
  // hono hands a HEAD to this GET handler with its method kept; the response body is dropped after.
  const head = c.req.method === 'HEAD'
  const hit = await caches.default.match(key)
  if (hit) {
    if (head) await hit.body?.cancel()
    return withEdgeHeaders(c, head ? withBody(hit, null) : hit, 'HIT')
  }
  // Always a GET, with no conditions: the edge answers HEAD and 304 itself, so what it caches is
  // the complete answer to a GET.
  const res = await proxyToDatacenter(c, new URL(c.req.url).pathname, { conditional: false, method: 'GET' })
  const length = cacheableLength(res)
  if (head) {
    // The client wants no body: the whole of it goes to the cache (or is dropped), never buffered.
    if (length !== null) store(c, key, res, res.body!, length)
    else await res.body?.cancel()
    return withEdgeHeaders(c, withBody(res, null), 'MISS')
  }
  if (length === null) return withEdgeHeaders(c, res, 'MISS')
  const [toClient, toCache] = res.body!.tee()
  store(c, key, res, toCache, length)
  return withEdgeHeaders(c, withBody(res, toClient), 'MISS')
}

modules.get('/modules/*', cachedFromDatacenter)
modules.get('/api/modules', cachedFromDatacenter)
modules.get('/api/modules/*', cachedFromDatacenter)
