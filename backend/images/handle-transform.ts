/**
 * One `images.<dc>.transform` request, from message to reply: decode, check the source URL, admit (or
 * answer `busy` at once), get the source (origin cache), transform in a slot, reply in chunks.
 * Every outcome is counted and every failure logged; nothing here throws into the subscription.
 *
 * The edge's deadline (`x-deadline`, shared/images.ts) bounds the work: a request whose deadline has
 * passed is not started (on arrival, or when it gets its source slot or its transform slot), waiting
 * for the source stops at the deadline, and sharp's timeout shrinks to the time left. Each is answered
 * `deadline_exceeded` and counted in `images_deadline_exceeded_total{stage}`.
 */
import type { Msg, NatsConnection } from '@nats-io/nats-core'
import { imageRequestHeaders, transformRequestSchema, type TransformRequest } from '#shared/images.ts'
import type { Logger } from '../runtime/logger.ts'
import type { InFlight } from '../runtime/in-flight.ts'
import { decodeMessage } from '../runtime/messages.ts'
import { limitLog } from '../runtime/log-limiter.ts'
import { ImageError, asImageError } from './error.ts'
import type { ImageMetrics } from './metrics.ts'
import type { OriginCache } from './origin-cache.ts'
import { checkUrl, type Allowlist } from '../outbound/allowlist.ts'
import { sourceErrors } from './fetch-source.ts'
import { transformImage, type TransformLimits, type TransformedImage } from './transform.ts'
import type { TransformSlots } from './transform-slots.ts'
import { chunkSize, replyError, replyImage } from './reply.ts'

export interface TransformHandlerDeps {
  nc: NatsConnection
  log: Logger
  inFlight: InFlight
  metrics: ImageMetrics
  allowlist: Allowlist
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
    else if (error.code === 'busy' || error.code === 'deadline_exceeded')
      log.debug(context, 'transform refused')
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
    const deadline = deadlineOf(msg)
    if (!deadline.ok) return fail(msg, new ImageError('invalid_request', deadline.message), started, request)
    const work = { request, deadline: deadline.at }
    try {
      checkDeadline(metrics, deadline.at, 'queue')
    } catch (error) {
      return fail(msg, asImageError(error), started, request)
    }
    // Refusing a URL is cheap and final: it needs no slot, and a busy datacenter still says why.
    const check = checkUrl(deps.allowlist, request.source, 'the source')
    if (!check.ok) return fail(msg, new ImageError(sourceErrors[check.code], check.message), started, request)
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
        const image = await transformSource(deps, work, check.url.href)
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

/** The `x-deadline` header: epoch ms, or absent (no deadline). */
function deadlineOf(msg: Msg): { ok: true; at: number | undefined } | { ok: false; message: string } {
  const text = msg.headers?.get(imageRequestHeaders.deadline)
  if (!text) return { ok: true, at: undefined }
  const at = Number(text)
  if (!/^\d{1,15}$/.test(text) || !Number.isSafeInteger(at))
    return { ok: false, message: `${imageRequestHeaders.deadline} must be epoch milliseconds` }
  return { ok: true, at }
}

type DeadlineStage = 'queue' | 'fetch' | 'transform'

function deadlineExceeded(metrics: ImageMetrics, stage: DeadlineStage): ImageError {
  metrics.deadlineExceeded.inc({ stage })
  const when = {
    queue: 'before it started',
    fetch: 'while fetching the source',
    transform: 'while transforming',
  }
  return new ImageError('deadline_exceeded', `the edge stopped waiting ${when[stage]}`)
}

/** Throws `deadline_exceeded` when the deadline has passed: work nobody waits for is not started. */
function checkDeadline(metrics: ImageMetrics, deadline: number | undefined, stage: DeadlineStage): void {
  if (deadline !== undefined && Date.now() >= deadline) throw deadlineExceeded(metrics, stage)
}

/**
 * Waits for `work` until the deadline. The work itself goes on (a source fetch may be shared with other
 * requests, and lands in the origin cache; it is bounded by the fetch timeout and size limit).
 */
async function untilDeadline<T>(
  metrics: ImageMetrics,
  deadline: number | undefined,
  stage: DeadlineStage,
  work: Promise<T>
): Promise<T> {
  if (deadline === undefined) return work
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(deadlineExceeded(metrics, stage)), Math.max(0, deadline - Date.now()))
  })
  try {
    return await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
  }
}

async function transformSource(
  deps: TransformHandlerDeps,
  work: { request: TransformRequest; deadline: number | undefined },
  sourceUrl: string
): Promise<TransformedImage> {
  const { metrics } = deps
  const { request, deadline } = work
  const admitted = performance.now()
  return deps.slots.withSource(async () => {
    checkDeadline(metrics, deadline, 'queue')
    const fetchStarted = performance.now()
    const { source, result } = await untilDeadline(
      metrics,
      deadline,
      'fetch',
      deps.originCache.get(sourceUrl)
    )
    metrics.originCache.inc({ result })
    if (result === 'miss') metrics.originFetchedBytes.inc(source.bytes.length)
    metrics.duration.observe({ stage: 'fetch' }, (performance.now() - fetchStarted) / 1000)

    const queued = performance.now()
    return deps.slots.transform(async () => {
      checkDeadline(metrics, deadline, 'queue')
      const transformStarted = performance.now()
      // Waiting for a source slot, then for a transform slot: the time this request spent queued.
      const waited = fetchStarted - admitted + (transformStarted - queued)
      metrics.duration.observe({ stage: 'queue' }, waited / 1000)
      // sharp stops at its timeout: the service's own, or the time the edge still waits if shorter.
      const timeLeft = deadline === undefined ? Infinity : deadline - Date.now()
      const limits = { ...deps.limits, timeoutMs: Math.min(deps.limits.timeoutMs, timeLeft) }
      try {
        return await transformImage(source.bytes, source.format, request.options, limits)
      } catch (error) {
        if (deadline !== undefined && Date.now() >= deadline) throw deadlineExceeded(metrics, 'transform')
        throw error
      } finally {
        metrics.duration.observe({ stage: 'transform' }, (performance.now() - transformStarted) / 1000)
      }
    })
  })
}
