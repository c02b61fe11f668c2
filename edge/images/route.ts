/**
 * `GET /img/<options>/<source URL>`: the image proxy. A cache hit is answered at the edge; a miss
 * goes as a NATS request (`images.<dc>.transform`) to the image service of the steered datacenter,
 * through one of that datacenter's NatsBridges (nats/bridge-stub.ts), with failover to the next datacenter on no responders,
 * timeout or busy. Identical misses in flight are collapsed in the isolate and again in the bridge.
 *
 * Misses are rate-limited per client IP (the IMAGE_RATE_LIMITER binding, wrangler.toml): past the
 * limit, 429 `rate_limited` with Retry-After. Hits (hot cache, Cache API) are not limited: they cost
 * no datacenter anything. Requests joining a miss already in flight are not counted again.
 *
 * Health: only the bridge failing to reach a datacenter (no responders, unreachable) is reported
 * against it. An image-service timeout, `busy` or `deadline_exceeded` is the cost of one request, not
 * a sign that the datacenter is down: hostile requests must not be able to take datacenters down.
 */
import { Hono, type Context } from 'hono'
import {
  imageErrorBodySchema,
  imageReplyHeaders,
  imageRequestHeaders,
  negotiateFormat,
  parseImageOptions,
  type ImageErrorCode,
  type ResolvedImageOptions,
  type TransformRequest,
} from '#shared/images.ts'
import { subjects } from '#shared/subjects.ts'
import { multiRegion } from '#shared/regions.ts'
import type { AppEnv } from '../env.ts'
import { ApiError } from '../http/errors.ts'
import { failoverError, withFailover } from '../steering/failover.ts'
import { natsBridge } from '../nats/bridge-stub.ts'
import type { BridgeStreamReply } from '../nats/bridge.ts'
import { parseImageUrl } from './url.ts'
import { verifyImagePath } from './signature.ts'
import { cachedAnswer, type CacheStatus } from '../http/cache-headers.ts'
import { cacheControl, imageCacheKey, replyEtag } from './cache.ts'
import { HotCache, freshFor, type HotEntry } from './hot-cache.ts'

export const images = new Hono<AppEnv>()

/** Per isolate; Workers give an isolate 128 MB, so a small share of it. */
const hot = new HotCache(16 * 1024 * 1024, 2 * 1024 * 1024)

/** Lookups in flight in this isolate, by cache key (see the route). */
const lookups = new Map<string, Promise<{ entry: HotEntry; xCache: CacheStatus }>>()

const toHotEntry = (res: { status: number; headers: Headers }, body: Uint8Array): HotEntry => ({
  status: res.status,
  headers: [...res.headers],
  body,
  expires: Date.now() + freshFor(res.headers.get('cache-control')) * 1000,
})

/** Image-service errors worth caching briefly: they come from the source, not from us. */
const cacheableErrors = new Set<ImageErrorCode>([
  'source_host_not_allowed',
  'source_address_blocked',
  'source_not_found',
  'source_too_large',
  'source_not_an_image',
  'image_too_many_pixels',
  'image_too_many_frames',
  'output_too_large',
  'image_unreadable',
  'source_http_error',
  'source_too_many_redirects',
  'source_timeout',
  'source_unreachable',
])

interface Transformed {
  status: number
  contentType: string
  bytes: Uint8Array
  /** The image service's ETag of the bytes (Image-ETag), when it sent one. */
  etag: string | undefined
  /** The image service's error, when it answered one (the body is then that JSON error). */
  errorCode?: ImageErrorCode
  errorMessage?: string
}

/** The image service's reply, its chunks already joined by the bridge in a buffer of their own. */
function assemble(reply: Extract<BridgeStreamReply, { ok: true }>): Transformed {
  if (reply.parts === 0) throw new ApiError('datacenter_unreachable', 'the image service sent an empty reply')
  const bytes = reply.data
  const status = Number(reply.headers[imageReplyHeaders.status] ?? 500)
  const contentType = reply.headers[imageReplyHeaders.contentType] ?? 'application/octet-stream'
  const etag = reply.headers[imageReplyHeaders.etag]
  if (status === 200) return { status, contentType, bytes, etag }
  const error = imageErrorBodySchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)))
  return {
    status,
    contentType: 'application/json',
    bytes,
    etag,
    errorCode: error.success ? error.data.error.code : 'internal',
    errorMessage: error.success ? error.data.error.message : 'unreadable error body',
  }
}

function headersFor(result: Transformed, etag: string, vary: boolean, dc: string): Headers {
  const headers = new Headers({
    'content-type': result.contentType,
    'cache-control': result.status === 200 ? cacheControl.success : cacheControl.error,
    etag,
    'access-control-allow-origin': '*',
    'timing-allow-origin': '*',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'",
    'x-datacenter': dc,
  })
  if (vary) headers.set('vary', 'Accept')
  return headers
}

const respond = (c: Context<AppEnv>, entry: HotEntry, xCache: CacheStatus) =>
  cachedAnswer(c, { status: entry.status, headers: entry.headers, body: entry.body }, xCache)

images.get('/img/*', async (c) => {
  const config = c.get('config')
  const parsed = parseImageUrl(new URL(c.req.url))
  if (!parsed.ok) throw new ApiError(parsed.code, parsed.message)
  const { url } = parsed
  if (config.imageSigningKey && !(await verifyImagePath(config.imageSigningKey, url.signed, url.signature)))
    throw new ApiError(
      'url_signature_invalid',
      'this image URL must carry a valid signature (/img/s:<signature>/...)'
    )
  const optionResult = parseImageOptions(url.options)
  if (!optionResult.ok)
    throw new ApiError('invalid_option', `${optionResult.option}: ${optionResult.message}`)
  const auto = optionResult.options.format === 'auto'
  const options: ResolvedImageOptions = {
    ...optionResult.options,
    format: negotiateFormat(optionResult.options.format, c.req.header('accept')),
  }

  const key = imageCacheKey(options, url.source)
  const warm = hot.get(key.url)
  if (warm) return respond(c, warm, 'HIT')
  // Identical requests in this isolate share one lookup (and, on a miss, one transform) until the
  // answer is in the hot cache, so none slips through the gap between the reply and the cache fill.
  // The NatsBridge collapses misses again across the isolates of an edge region: its bridges are
  // sharded by this very key (nats/bridge-stub.ts), so identical misses meet in one. Joiners get the
  // first request's answer, from the datacenter steered for it.
  let lookup = lookups.get(key.url)
  if (!lookup) {
    lookup = lookUpOrTransform(c, key, { source: url.source, options }, auto).finally(() =>
      lookups.delete(key.url)
    )
    lookups.set(key.url, lookup)
  }
  const { entry, xCache } = await lookup
  return respond(c, entry, xCache)
})

/** Seconds in the IMAGE_RATE_LIMITER's period (wrangler.toml `simple.period`): the longest wait. */
const RATE_LIMIT_PERIOD_S = 60

/** One more image miss for this client, or 429 `rate_limited` when it is over the limit. */
async function checkRateLimit(c: Context<AppEnv>): Promise<void> {
  // Cloudflare always sets cf-connecting-ip; only local runs and tests go without it.
  const ip = c.req.header('cf-connecting-ip') ?? 'unknown'
  const { success } = await c.env.IMAGE_RATE_LIMITER.limit({ key: `img:${ip}` })
  if (success) return
  c.header('retry-after', String(RATE_LIMIT_PERIOD_S))
  throw new ApiError(
    'rate_limited',
    `too many image transforms from this address; try again within ${RATE_LIMIT_PERIOD_S} s`
  )
}

/** The Cache API, else the image service; the answer ends in the hot cache (and the Cache API) when cacheable. */
async function lookUpOrTransform(
  c: Context<AppEnv>,
  key: Request,
  request: TransformRequest,
  vary: boolean
): Promise<{ entry: HotEntry; xCache: CacheStatus }> {
  const cache = caches.default
  const hit = await cache.match(key)
  if (hit) {
    const entry = toHotEntry(hit, new Uint8Array(await hit.arrayBuffer()))
    hot.set(key.url, entry)
    return { entry, xCache: 'HIT' }
  }

  await checkRateLimit(c)
  const config = c.get('config')
  const outcome = await withFailover(
    c,
    async (dc) => {
      const { bridge, natsWs } = natsBridge(c, dc, key.url)
      const ask = (subject: string) =>
        bridge.requestStream(
          {
            dc: dc.id,
            natsWs,
            subject,
            payload: JSON.stringify(request),
            timeoutMs: config.imageTimeoutMs,
            headers: {
              'x-request-id': c.get('requestId'),
              // When this edge stops waiting: the service drops work past it (deadline_exceeded).
              [imageRequestHeaders.deadline]: String(Date.now() + config.imageTimeoutMs),
            },
          },
          key.url
        )
      // The steered datacenter's own image service first (a queue group spreads requests over a whole
      // cluster, so the region's subject alone would send half of them across the region). With several
      // regions, none there: the region's subject, answered elsewhere in the region or, with none in
      // it, by the nearest region through the gateways (shared/subjects.ts).
      let reply = await ask(subjects.imageTransform(dc.id))
      if (!reply.ok && reply.code === 'no_responders' && multiRegion(config.datacenters))
        reply = await ask(subjects.imageTransformInRegion(dc.region))
      // A timeout is this request's cost (a slow source, a heavy transform), not a dead datacenter.
      if (!reply.ok)
        return { ok: false, code: reply.code, message: reply.message, healthy: reply.code === 'timeout' }
      const result = assemble(reply)
      // Busy is the service shedding load, deadline_exceeded its answer to our own deadline: try
      // another datacenter without blaming this one.
      if (result.errorCode === 'busy' || result.errorCode === 'deadline_exceeded')
        return { ok: false, code: result.errorCode, message: result.errorMessage ?? '', healthy: true }
      return { ok: true, value: result }
    },
    { maxAttempts: 2 }
  )
  if (!outcome.ok) throw failoverError(c, outcome.failures, 'transform the image')
  const result = outcome.value
  if (result.status !== 200 && !result.errorCode)
    throw new ApiError('datacenter_unreachable', 'malformed reply')
  const etag = await replyEtag(result.etag, result.bytes)
  const headers = headersFor(result, etag, vary, outcome.dc.id)
  const entry = toHotEntry({ status: result.status, headers }, result.bytes)
  if (result.status === 200 || (result.errorCode !== undefined && cacheableErrors.has(result.errorCode))) {
    hot.set(key.url, entry)
    // After a timer turn, so the answer goes out first: the copy for the Cache API shares this
    // isolate's thread, and written before the answer it delayed it (5 ms a miss on workerd); the hot
    // cache and `lookups` answer this isolate's repeats meanwhile.
    c.executionCtx.waitUntil(
      scheduler
        .wait(0)
        .then(() => cache.put(key, new Response(result.bytes, { status: result.status, headers })))
    )
  }
  return { entry, xCache: 'MISS' }
}
