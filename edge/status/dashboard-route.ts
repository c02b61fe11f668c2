/**
 * `/status/dashboard` (the operator's dashboard: small charts drawn on the server, dashboard.tsx) and
 * `/status/dashboard.json` (the same figures, machine-readable), both `?range=1h|3h|6h`.
 *
 * Public, like /status: the figures are aggregates (rates per datacenter, a hit ratio, queue lengths,
 * the share of each node's disk still free), with nothing secret in them, and the operator opens it
 * from the status page without a token. What a visitor can make it cost is bounded: it never carries a
 * query of the visitor's (only a range from a list), each range is fetched from a datacenter at most
 * once per CACHE_SECONDS per edge location (once per FAILURE_CACHE_SECONDS while none can give it,
 * so a Prometheus outage is not retried by every visitor), and the web service caches and collapses
 * behind that.
 *
 * The figures come from the steered datacenter's web service (`GET /api/dashboard`, which asks its
 * Prometheus: backend/web/dashboard.ts; at the request's leg when the emulated WAN is on:
 * steering/legs.ts) with the usual failover (steering/failover.ts). No failure
 * of this route is ever reported against a datacenter's health, not even a time-out or a refused
 * connection: monitoring must never change how the edge steers real traffic (a slow Prometheus would
 * otherwise take a healthy datacenter out of rotation), and the probes judge datacenters. So the web
 * service's deadline on Prometheus is kept under this route's (PROMETHEUS_TIMEOUT_MS there), and a
 * failed attempt only sends this request to the next datacenter. When none can: 503
 * metrics_unavailable if every datacenter reached said so, else failoverError's 502/504; the page
 * and the JSON then say so with the code and a fixed sentence (dashboardFailures), never with what a
 * datacenter or its Prometheus answered: that detail is logged.
 */
import { Hono, type Context } from 'hono'
import { z } from 'zod'
import {
  boundedText,
  dashboardErrorCodes,
  dashboardRangeSchema,
  dashboardSchema,
  DEFAULT_DASHBOARD_RANGE,
  type Dashboard,
  type DashboardRange,
} from '#shared/dashboard.ts'
import { errorMessage } from '#shared/error-message.ts'
import type { AppEnv } from '../env.ts'
import { failoverError, withFailover } from '../steering/failover.ts'
import { webLeg } from '../steering/legs.ts'
import { ApiError } from '../http/errors.ts'
import {
  dashboardErrorPage,
  dashboardFailureCodes,
  dashboardFailures,
  dashboardPage,
  type DashboardFailure,
} from './dashboard.tsx'

export const dashboard = new Hono<AppEnv>()

/** How long a range's figures are kept at the edge. */
export const CACHE_SECONDS = 30
/** How long the edge answers a range's failure again without asking (the web service keeps its own 10 s). */
export const FAILURE_CACHE_SECONDS = 10
/** A document is at most some 400 kB (7 panels of 24 series of 121 points); anything larger is not one. */
const MAX_DOCUMENT_BYTES = 2 * 1024 * 1024

/** A failed attempt's detail, as logged: a web service's or a fetch's message may be any length. */
const MAX_DETAIL = 200
const bounded = (text: string) => text.slice(0, MAX_DETAIL)

const webErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) })
const isDashboardFailure = (code: string): code is DashboardFailure =>
  dashboardFailureCodes.some((c) => c === code)

/** No datacenter could give the figures: an ApiError whose message is the code's fixed sentence. */
class DashboardError extends ApiError {
  readonly failure: DashboardFailure

  constructor(failure: DashboardFailure) {
    super(failure, dashboardFailures[failure])
    this.failure = failure
  }
}
const isMetricsError = (code: string) => dashboardErrorCodes.some((c) => c === code)

function requestedRange(c: Context<AppEnv>): DashboardRange {
  const range = dashboardRangeSchema.default(DEFAULT_DASHBOARD_RANGE).safeParse(c.req.query('range'))
  if (!range.success) throw new ApiError('bad_request', 'range is one of 1h, 3h, 6h')
  return range.data
}

/** The figures from the first datacenter that can give them. */
async function fromDatacenters(c: Context<AppEnv>, range: DashboardRange): Promise<Dashboard> {
  const config = c.get('config')
  const headers = new Headers({ accept: 'application/json', 'x-request-id': c.get('requestId') })
  for (const [name, value] of Object.entries(config.originProof)) headers.set(name, value)
  const timeoutMs = config.upstreamTimeoutMs
  /** Datacenters that answered, but whose Prometheus could not. */
  const withoutMetrics = new Set<string>()

  const outcome = await withFailover<Dashboard>(c, async (dc) => {
    let res: Response
    try {
      res = await fetch(new URL(`/api/dashboard?range=${range}`, webLeg(c, dc)), {
        headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (error) {
      return error instanceof Error && error.name === 'TimeoutError'
        ? { ok: false, code: 'timeout', message: `no answer within ${timeoutMs} ms`, healthy: true }
        : { ok: false, code: 'unreachable', message: bounded(errorMessage(error)), healthy: true }
    }
    let body: unknown
    try {
      const text = await boundedText(res, MAX_DOCUMENT_BYTES)
      if (text === null) throw new Error(`an answer larger than ${MAX_DOCUMENT_BYTES} bytes`)
      body = JSON.parse(text)
    } catch (error) {
      // The datacenter answered, but not with a dashboard: not a reason to think it down.
      return {
        ok: false,
        code: 'exception',
        message: bounded(`HTTP ${res.status}: ${errorMessage(error)}`),
        healthy: true,
      }
    }
    if (res.status === 200) {
      const doc = dashboardSchema.safeParse(body)
      if (doc.success) return { ok: true, value: doc.data }
      const why = doc.error.issues[0]?.message ?? 'invalid'
      return { ok: false, code: 'exception', message: bounded(`not a dashboard: ${why}`), healthy: true }
    }
    const error = webErrorSchema.safeParse(body)
    if (error.success && isMetricsError(error.data.error.code)) {
      withoutMetrics.add(dc.id)
      const { code, message } = error.data.error
      return { ok: false, code: 'upstream_5xx', message: bounded(`${code}: ${message}`), healthy: true }
    }
    return {
      ok: false,
      code: res.status >= 500 ? 'upstream_5xx' : 'exception',
      message: `HTTP ${res.status}`,
      healthy: true,
    }
  })
  if (outcome.ok) return outcome.value
  // withFailover has logged every attempt; the visitor gets the code and its fixed sentence only.
  const code = outcome.failures.every((f) => withoutMetrics.has(f.dc))
    ? 'metrics_unavailable'
    : failoverError(c, outcome.failures, 'give the dashboard figures').code
  throw new DashboardError(isDashboardFailure(code) ? code : 'datacenter_unreachable')
}

/** A failure as the cache keeps it: its code only. */
const cachedFailureSchema = z.object({ failed: z.enum(dashboardFailureCodes) })

function store(c: Context<AppEnv>, key: Request, body: unknown, seconds: number): void {
  const stored = new Response(JSON.stringify(body), {
    headers: { 'content-type': 'application/json', 'cache-control': `public, max-age=${seconds}` },
  })
  c.executionCtx.waitUntil(caches.default.put(key, stored))
}

/**
 * The figures for `range`: from this location's cache, else from a datacenter (then cached). A
 * failure is cached too, for less long, and thrown again from the cache as the DashboardError it was.
 */
async function figures(c: Context<AppEnv>, range: DashboardRange): Promise<Dashboard> {
  const key = new Request(`${new URL(c.req.url).origin}/status/dashboard.json?range=${range}`)
  const hit = await caches.default.match(key)
  if (hit) {
    const body: unknown = await hit.json()
    const doc = dashboardSchema.safeParse(body)
    const failure = cachedFailureSchema.safeParse(body)
    if (doc.success || failure.success) c.header('x-cache', 'HIT')
    if (doc.success) return doc.data
    if (failure.success) throw new DashboardError(failure.data.failed)
  }
  c.header('x-cache', 'MISS')
  let doc: Dashboard
  try {
    doc = await fromDatacenters(c, range)
  } catch (error) {
    if (error instanceof DashboardError) store(c, key, { failed: error.failure }, FAILURE_CACHE_SECONDS)
    throw error
  }
  store(c, key, doc, CACHE_SECONDS)
  return doc
}

dashboard.get('/status/dashboard.json', async (c) =>
  c.json(await figures(c, requestedRange(c)), 200, { 'cache-control': 'no-store' })
)

dashboard.get('/status/dashboard', async (c) => {
  const range = requestedRange(c)
  c.header('cache-control', 'no-store')
  try {
    return c.html(await dashboardPage(await figures(c, range)))
  } catch (error) {
    if (!(error instanceof DashboardError)) throw error
    return c.html(await dashboardErrorPage(range, error.failure), error.status)
  }
})
