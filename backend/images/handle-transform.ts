/**
 * One `images.<dc>.transform` request, from message to reply: decode, check the source URL, admit (or
 * answer `busy` at once), get the source (origin cache), transform in a slot, reply in chunks.
 * Every outcome is counted and every failure logged; nothing here throws into the subscription.
 */
import type { Msg, NatsConnection } from '@nats-io/nats-core'
import { transformRequestSchema, type TransformRequest } from '#shared/images.ts'
import type { Logger } from '../runtime/logger.ts'
import type { InFlight } from '../runtime/in-flight.ts'
import { decodeMessage } from '../runtime/messages.ts'
import { limitLog } from '../runtime/log-limiter.ts'
import { ImageError, asImageError } from './image-error.ts'
import type { ImageMetrics } from './image-metrics.ts'
import type { OriginCache } from './origin-cache.ts'
import { checkSourceUrl, type SourcePolicy } from './source-policy.ts'
import { transformImage, type TransformLimits, type TransformedImage } from './transform.ts'
import type { TransformSlots } from './transform-slots.ts'
import { chunkSize, replyError, replyImage } from './reply.ts'

export interface TransformHandlerDeps {
  nc: NatsConnection
  log: Logger
  inFlight: InFlight
  metrics: ImageMetrics
  policy: SourcePolicy
  originCache: OriginCache
  slots: TransformSlots
  limits: TransformLimits
  replyChunkBytes?: number
}

export function createTransformHandler(deps: TransformHandlerDeps): (msg: Msg) => void {
  const { log, metrics, slots } = deps
  // A broken or hostile source is asked for again and again: a few lines per minute and source,
  // then a count. The metrics above count every one.
  const limited = limitLog(log, { burst: 5, windowMs: 60_000 })
  const hostOf = (source: string | undefined) => {
    try {
      return source ? new URL(source).host : '-'
    } catch {
      return '-'
    }
  }

  const fail = (msg: Msg, error: ImageError, started: number, request?: TransformRequest) => {
    metrics.transforms.inc({ outcome: error.code })
    metrics.duration.observe({ stage: 'total' }, (performance.now() - started) / 1000)
    const context = { code: error.code, source: request?.source, reason: error.message }
    const key = `${error.code}:${hostOf(request?.source)}`
    if (error.code === 'internal') limited.error(key, { ...context, err: error.cause }, 'transform failed')
    // Under overload every refusal would be a log line: the counter is their record.
    else if (error.code === 'busy') log.debug(context, 'transform refused')
    else limited.warn(key, context, 'transform refused')
    try {
      replyError(msg, error.code, error.message)
    } catch (err) {
      // The connection is closing: the edge's request times out and moves on to another datacenter.
      log.warn({ err, code: error.code }, 'could not send the error reply')
    }
  }

  return (msg) => {
    const started = performance.now()
    const decoded = decodeMessage(msg, transformRequestSchema)
    if (!decoded.ok) return fail(msg, new ImageError('invalid_request', decoded.message), started)
    const request = decoded.value
    // Refusing a URL is cheap and final: it needs no slot, and a busy datacenter still says why.
    const check = checkSourceUrl(deps.policy, request.source)
    if (!check.ok) return fail(msg, new ImageError(check.code, check.message), started, request)
    if (!slots.tryAdmit())
      return fail(
        msg,
        new ImageError(
          'busy',
          `${slots.admitted} transforms are running or queued here; try another datacenter`
        ),
        started,
        request
      )
    void deps.inFlight.track(async () => {
      try {
        const image = await transformSource(deps, request, check.url.href)
        replyImage(msg, image, chunkSize(deps.nc, deps.replyChunkBytes))
        metrics.transforms.inc({ outcome: 'ok' })
        metrics.outputBytes.inc({ format: image.format }, image.data.length)
        metrics.duration.observe({ stage: 'total' }, (performance.now() - started) / 1000)
        log.debug(
          {
            source: request.source,
            format: image.format,
            bytes: image.data.length,
            ms: performance.now() - started,
          },
          'transformed'
        )
      } catch (error) {
        fail(msg, asImageError(error), started, request)
      } finally {
        slots.leave()
      }
    })
  }
}

async function transformSource(
  deps: TransformHandlerDeps,
  request: TransformRequest,
  sourceUrl: string
): Promise<TransformedImage> {
  const { metrics } = deps
  const admitted = performance.now()
  return deps.slots.withSource(async () => {
    const fetchStarted = performance.now()
    const { source, result } = await deps.originCache.get(sourceUrl)
    metrics.originCache.inc({ result })
    if (result === 'miss') metrics.originFetchedBytes.inc(source.bytes.length)
    metrics.duration.observe({ stage: 'fetch' }, (performance.now() - fetchStarted) / 1000)

    const queued = performance.now()
    return deps.slots.transform(async () => {
      const transformStarted = performance.now()
      // Waiting for a source slot, then for a transform slot: the time this request spent queued.
      const waited = fetchStarted - admitted + (transformStarted - queued)
      metrics.duration.observe({ stage: 'queue' }, waited / 1000)
      try {
        return await transformImage(source.bytes, source.format, request.options, deps.limits)
      } finally {
        metrics.duration.observe({ stage: 'transform' }, (performance.now() - transformStarted) / 1000)
      }
    })
  })
}
