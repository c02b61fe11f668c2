/**
 * Runs one request against the steered datacenter and, when that datacenter fails in a way that
 * makes a retry safe (refused or reset connection, timeout, 5xx, NATS no responders), once more on
 * the next one. Every failure is reported to the health state. Headers say what happened:
 *   x-failover-from: <dc>           the first choice failed and another datacenter answered
 *   x-steering-fallback: no-healthy-datacenter   nothing was healthy; the nearest was used anyway
 */
import type { Context } from 'hono'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import type { AppEnv } from '../env.ts'
import { clientLocation } from '../client-location.ts'
import { steer } from './nearest.ts'
import { availability, healthSnapshot, reportFailure } from './health-view.ts'
import { count, countServed } from '../http/counters.ts'

export type Attempt<T> =
  | { ok: true; value: T }
  /**
   * The datacenter failed; another may succeed. `healthy: true` when it is not the datacenter's
   * fault (it is busy), so the failure is not reported against its health.
   */
  | { ok: false; reason: string; healthy?: boolean }

export type FailoverOutcome<T> =
  | { ok: true; value: T; dc: ReachableDatacenter; tried: string[] }
  | { ok: false; tried: string[]; reasons: string[] }

export async function withFailover<T>(
  c: Context<AppEnv>,
  attempt: (dc: ReachableDatacenter) => Promise<Attempt<T>>,
  opts: { maxAttempts?: number } = {}
): Promise<FailoverOutcome<T>> {
  const config = c.get('config')
  const snapshot = await healthSnapshot(c)
  const { ranked, fallback } = steer(
    config.datacenters,
    clientLocation(c.req.raw, config.allowGeoOverride),
    (dc) => availability(snapshot, dc.id)
  )
  if (fallback) {
    count('fallbacks')
    c.header('x-steering-fallback', 'no-healthy-datacenter')
  }
  const tried: string[] = []
  const reasons: string[] = []
  for (const dc of ranked.slice(0, opts.maxAttempts ?? 2)) {
    tried.push(dc.id)
    let result: Attempt<T>
    try {
      result = await attempt(dc)
    } catch (error) {
      result = { ok: false, reason: String(error) }
    }
    if (result.ok) {
      countServed(dc.id)
      if (tried.length > 1) {
        count('failovers')
        c.header('x-failover-from', tried.slice(0, -1).join(','))
      }
      return { ok: true, value: result.value, dc, tried }
    }
    reasons.push(`${dc.id}: ${result.reason}`)
    if (!result.healthy) reportFailure(c, dc.id, result.reason)
  }
  count('failures')
  console.error(
    JSON.stringify({
      level: 'error',
      requestId: c.get('requestId'),
      msg: 'no datacenter could answer',
      tried,
      reasons,
    })
  )
  return { ok: false, tried, reasons }
}
