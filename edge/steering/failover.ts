/**
 * Runs one request against the steered datacenter and, when that datacenter fails in a way that
 * makes a retry safe (refused or reset connection, timeout, 5xx, NATS no responders), once more on
 * the next one. Datacenters are ranked by latency/choose.ts: measured latency from the request's edge
 * location, else distance (STEERING_MODE). Each successful attempt's time is recorded for that edge
 * location; every failure is reported to the health state instead. Headers say what happened:
 *   x-steering: <reason>            why the first choice was first: measured, distance, exploration,
 *                                   pinned or fallback
 *   x-failover-from: <dc>           the first choice failed and another datacenter answered
 *   x-steering-fallback: no-healthy-datacenter   nothing was healthy; the nearest was used anyway
 *
 * Each failed attempt carries a code, never only a sentence: the NatsBridge's own codes pass through
 * as they are (results are values across the Durable Object call), and so do the HTTP proxy's.
 *
 * When no datacenter could answer, `failoverError` is the one answer, for every route:
 *   504 datacenter_timeout      at least one datacenter was reached but ran out of time (`timeout`,
 *                               the image service's `deadline_exceeded`, `out_of_time`)
 *   502 datacenter_unreachable  every attempt failed outright (unreachable, no responders, 5xx, busy)
 * A time-out wins over the others because it is the one failure that may be the request's own cost
 * (a slow source, a heavy transform) and the one a client can act on; that the next datacenter was
 * also down tells it nothing more. A route that stores rather than answers (a webhook delivery)
 * answers 503 queue_unavailable with Retry-After instead: the sender should send it again.
 */
import type { Context } from 'hono'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import type { ImageErrorCode } from '#shared/images.ts'
import type { AppEnv } from '../env.ts'
import type { BridgeFailure } from '../nats/bridge.ts'
import { clientLocation } from '../client-location.ts'
import { chooseDatacenters } from '../latency/choose.ts'
import { isolateLatency } from '../latency/estimates.ts'
import { steeringModeOf } from '../latency/mode.ts'
import { availability, healthSnapshot, reportFailure } from './health-view.ts'
import { count, countServed } from '../http/counters.ts'
import { ApiError } from '../http/errors.ts'

/** Why one datacenter could not answer. */
export type AttemptFailure =
  /** The NatsBridge's codes (nats/bridge.ts): `unreachable`, `no_responders`, `timeout`, … */
  | BridgeFailure
  /** The HTTP proxy's (http/datacenter.ts): `unreachable` and `timeout` as above, or a 5xx answer. */
  | 'upstream_5xx'
  /** The image service's answers that send a request elsewhere without blaming the datacenter. */
  | Extract<ImageErrorCode, 'busy' | 'deadline_exceeded'>
  /** The route's own time budget was spent before this datacenter could be asked. */
  | 'out_of_time'
  /** The attempt threw: a Durable Object call failed, or a reply could not be read. */
  | 'exception'

export type Attempt<T> =
  | { ok: true; value: T }
  /**
   * The datacenter failed; another may succeed. `healthy: true` when it is not the datacenter's
   * fault (it is busy), so the failure is not reported against its health.
   */
  | { ok: false; code: AttemptFailure; message: string; healthy?: boolean }

/** One failed attempt, as the outcome lists it. */
export interface FailedAttempt {
  dc: string
  code: AttemptFailure
  message: string
}

export type FailoverOutcome<T> =
  | { ok: true; value: T; dc: ReachableDatacenter; tried: string[] }
  | { ok: false; tried: string[]; failures: FailedAttempt[] }

/** Whether a failure means "reached, but out of time": any of them makes the answer a 504. */
const ranOutOfTime = {
  unknown_datacenter: false,
  unreachable: false,
  no_responders: false,
  timeout: true,
  upstream_5xx: false,
  busy: false,
  deadline_exceeded: true,
  out_of_time: true,
  exception: false,
} as const satisfies Record<AttemptFailure, boolean>

/** Seconds a sender is asked to wait before sending a write again that no datacenter could store. */
const STORE_RETRY_AFTER_S = 30

/**
 * The error to throw when no datacenter could answer, by the rule in this file's header. `what`
 * completes "no datacenter could …" (e.g. "transform the image"); every attempt is listed after it.
 */
export function failoverError(
  c: Context<AppEnv>,
  failures: readonly FailedAttempt[],
  what: string,
  kind: 'answer' | 'store' = 'answer'
): ApiError {
  const message = `no datacenter could ${what} (${describeFailures(failures)})`
  if (kind === 'store') {
    c.header('retry-after', String(STORE_RETRY_AFTER_S))
    return new ApiError('queue_unavailable', message)
  }
  const timedOut = failures.some((f) => ranOutOfTime[f.code])
  return new ApiError(timedOut ? 'datacenter_timeout' : 'datacenter_unreachable', message)
}

/** `<code>: <message>`, for the health record. */
const describeFailure = (f: { code: AttemptFailure; message: string }) =>
  f.message ? `${f.code}: ${f.message}` : f.code

/** `<dc>: <code>: <message>` for each attempt, for error messages. */
const describeFailures = (failures: readonly FailedAttempt[]): string =>
  failures.map((f) => `${f.dc}: ${describeFailure(f)}`).join('; ')

export async function withFailover<T>(
  c: Context<AppEnv>,
  /** `last`: no datacenter is left to try after this one (it may take all the time there is). */
  attempt: (dc: ReachableDatacenter, position: { last: boolean }) => Promise<Attempt<T>>,
  opts: { maxAttempts?: number } = {}
): Promise<FailoverOutcome<T>> {
  const config = c.get('config')
  const snapshot = await healthSnapshot(c)
  const edge = c.get('edgeLocation').id
  const mode = steeringModeOf(c.req.raw, config)
  const now = Date.now()
  const { ranked, fallback, reason, ...made } = chooseDatacenters(
    config.datacenters,
    clientLocation(c.req.raw, config.allowGeoOverride),
    (dc) => availability(snapshot, dc.id),
    isolateLatency.at(edge),
    now,
    mode
  )
  // A request steered by distance (an operator's switch, a comparison) takes no turn of exploration.
  if (mode === 'measured') isolateLatency.chose(edge, made, now)
  c.header('x-steering', reason)
  if (fallback) {
    count('fallbacks')
    c.header('x-steering-fallback', 'no-healthy-datacenter')
  }
  const tried: string[] = []
  const failures: FailedAttempt[] = []
  const candidates = ranked.slice(0, opts.maxAttempts ?? 2)
  for (const [index, dc] of candidates.entries()) {
    tried.push(dc.id)
    let result: Attempt<T>
    // workerd's clock moves only on I/O, and an attempt is I/O: its time is the round trip and the
    // datacenter's work, what a client of this edge location waits for.
    const startedAt = Date.now()
    try {
      result = await attempt(dc, { last: index === candidates.length - 1 })
    } catch (error) {
      result = { ok: false, code: 'exception', message: String(error) }
    }
    if (result.ok) {
      const endedAt = Date.now()
      isolateLatency.record(edge, dc.id, endedAt - startedAt, endedAt)
      countServed(dc.id)
      if (tried.length > 1) {
        count('failovers')
        c.header('x-failover-from', tried.slice(0, -1).join(','))
      }
      return { ok: true, value: result.value, dc, tried }
    }
    failures.push({ dc: dc.id, code: result.code, message: result.message })
    if (!result.healthy) reportFailure(c, dc.id, describeFailure(result))
  }
  count('failures')
  console.error(
    JSON.stringify({
      level: 'error',
      requestId: c.get('requestId'),
      msg: 'no datacenter could answer',
      tried,
      failures,
    })
  )
  return { ok: false, tried, failures }
}
