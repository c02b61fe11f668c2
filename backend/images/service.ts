/**
 * The image service of a datacenter: answers `images.<dc>.transform` and, given its REGION,
 * `images.region.<region>.transform` (queue group `images`) with the source image fetched safely,
 * transformed by sharp, in chunked replies (shared/images.ts).
 */
// First: size libuv's thread pool before anything starts it, and tune V8's GC before any large Buffer.
import './thread-pool.ts'
import './heap-tuning.ts'
import sharp from 'sharp'
import { queueGroups, subjects } from '#shared/subjects.ts'
import { runService } from '../runtime/service.ts'
import { imagesConfigSchema } from './config.ts'
import { fetchSource } from './fetch-source.ts'
import { OriginCache } from './origin-cache.ts'
import { TransformSlots } from './transform-slots.ts'
import { planConcurrency } from './memory-budget.ts'
import { createImageMetrics } from './metrics.ts'
import { createTransformHandler } from './handle-transform.ts'

// libvips' operation cache helps repeated operations on one file; ours are different images each time,
// so it would only hold memory.
sharp.cache(false)

await runService({
  name: 'images',
  config: imagesConfigSchema,
  start({ config, nc, log, metrics: runtimeMetrics, inFlight }) {
    const allowlist = config.IMAGE_SOURCE_HOSTS
    const plan = planConcurrency({
      budgetBytes: config.IMAGE_MEMORY_BUDGET_BYTES,
      originCacheBytes: config.IMAGE_ORIGIN_CACHE_BYTES,
    })
    const concurrency = config.IMAGE_CONCURRENCY ?? plan.concurrency
    const slots = new TransformSlots(concurrency, config.IMAGE_QUEUE_LIMIT ?? concurrency * 8)
    const fetchLimits = {
      maxBytes: config.IMAGE_MAX_SOURCE_BYTES,
      connectTimeoutMs: config.IMAGE_FETCH_CONNECT_TIMEOUT_MS,
      totalTimeoutMs: config.IMAGE_FETCH_TIMEOUT_MS,
    }
    const originCache = new OriginCache(
      { maxBytes: config.IMAGE_ORIGIN_CACHE_BYTES, ttlMs: config.IMAGE_ORIGIN_CACHE_TTL_MS },
      (url) => fetchSource(allowlist, url, fetchLimits)
    )
    const metrics = createImageMetrics(runtimeMetrics.registry, {
      queued: () => slots.queued,
      running: () => slots.running,
      originCacheBytes: () => originCache.bytes,
    })
    const handle = createTransformHandler({
      nc,
      log,
      inFlight,
      metrics,
      allowlist,
      originCache,
      slots,
      limits: {
        maxInputPixels: config.IMAGE_MAX_INPUT_PIXELS,
        timeoutMs: config.IMAGE_TRANSFORM_TIMEOUT_MS,
        avifEffort: config.IMAGE_AVIF_EFFORT,
        maxFrames: config.IMAGE_MAX_FRAMES,
        maxAnimationMs: config.IMAGE_MAX_ANIMATION_MS,
      },
      replyChunkBytes: config.IMAGE_REPLY_CHUNK_BYTES,
    })
    const subscribe = (subject: string) =>
      nc.subscribe(subject, {
        queue: queueGroups.images,
        callback: (err, msg) => {
          if (err) log.error({ err, subject }, 'transform subscription error')
          else handle(msg)
        },
      })
    const subscriptions = [
      subscribe(subjects.imageTransform(config.DC)),
      ...(config.REGION ? [subscribe(subjects.imageTransformInRegion(config.REGION))] : []),
    ]
    log.info(
      {
        concurrency: slots.concurrency,
        queueLimit: slots.queueLimit,
        plan: config.IMAGE_CONCURRENCY === undefined ? plan : 'IMAGE_CONCURRENCY',
        hosts: [...allowlist.hosts, ...allowlist.suffixes.map((s) => `*${s}`), ...allowlist.origins],
      },
      'images configured'
    )
    return {
      // Stop taking requests; those admitted finish (they are tracked in flight) before NATS drains.
      stop: async () => {
        await Promise.all(subscriptions.map((s) => s.drain()))
      },
    }
  },
})
