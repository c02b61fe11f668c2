/**
 * The request path's view of health: a per-isolate memo of the HealthRegistry snapshot, read at
 * most every HEALTH_MEMO_MS. A request never waits for the Durable Object while a memo exists: a
 * stale memo is used as is and refreshed in the background. Failures this isolate sees itself
 * take that datacenter out of its own rotation at once (for a few seconds) and are reported to
 * the registry, where they count towards taking it down everywhere.
 *
 * That hold is kept per edge location (placement/edge-location.ts): a failure seen on the way from
 * one place says nothing of the way from another, and on a local run one isolate serves every place.
 */
import type { Context } from 'hono'
import type { AppEnv } from '../env.ts'
import type { HealthSnapshot } from './health-registry.ts'
import type { Availability } from './nearest.ts'

export const HEALTH_REGISTRY_NAME = 'global'
/** How long an isolate keeps a datacenter out of rotation after a failure it saw itself. */
const LOCAL_HOLD_MS = 5_000

let memo: { snapshot: HealthSnapshot; fetchedAt: number } | undefined
let refreshStartedAt = 0
/** By edge location, then datacenter: until when this isolate keeps it out of rotation. */
const heldUntil = new Map<string, Map<string, number>>()

/** Health as one request steers by it. */
export interface RequestHealth {
  /** The registry's snapshot; undefined while it has never answered (then every datacenter counts as up). */
  snapshot: HealthSnapshot | undefined
  /** Where the request entered the edge: whose holds apply to it. */
  edgeLocation: string
}

async function refresh(c: Context<AppEnv>): Promise<HealthSnapshot | undefined> {
  refreshStartedAt = Date.now()
  try {
    const snapshot = await c.env.HEALTH.getByName(HEALTH_REGISTRY_NAME).snapshot()
    // A refresh that started before an operator change may finish after it: keep the newer truth.
    if (!memo || snapshot.version >= memo.snapshot.version) memo = { snapshot, fetchedAt: Date.now() }
    return memo.snapshot
  } catch (error) {
    console.error(
      JSON.stringify({
        level: 'error',
        requestId: c.get('requestId'),
        msg: 'health registry unreachable',
        error: String(error),
      })
    )
    return memo?.snapshot
  }
}

async function currentSnapshot(c: Context<AppEnv>): Promise<HealthSnapshot | undefined> {
  const now = Date.now()
  const memoMs = c.get('config').health.memoMs
  if (!memo) return refresh(c)
  if (now - memo.fetchedAt >= memoMs && now - refreshStartedAt >= memoMs) {
    c.executionCtx.waitUntil(refresh(c))
  }
  return memo.snapshot
}

/** The health this request steers by: the current snapshot, and where the request entered the edge. */
export async function healthSnapshot(c: Context<AppEnv>): Promise<RequestHealth> {
  return { snapshot: await currentSnapshot(c), edgeLocation: c.get('edgeLocation').id }
}

export function availability(health: RequestHealth, dc: string, now = Date.now()): Availability {
  const h = health.snapshot?.datacenters[dc]
  if (h?.drained) return 'drained'
  const held = heldUntil.get(health.edgeLocation)?.get(dc) ?? 0
  if (held > now || (h && !h.up)) return 'down'
  return 'available'
}

/** Records a failure of `dc` seen on the request path. */
export function reportFailure(c: Context<AppEnv>, dc: string, reason: string): void {
  const location = c.get('edgeLocation').id
  let holds = heldUntil.get(location)
  if (!holds) heldUntil.set(location, (holds = new Map<string, number>()))
  holds.set(dc, Date.now() + LOCAL_HOLD_MS)
  c.executionCtx.waitUntil(
    c.env.HEALTH.getByName(HEALTH_REGISTRY_NAME)
      .report(dc, reason)
      .catch((error: unknown) =>
        console.error(
          JSON.stringify({ level: 'error', msg: 'health report failed', dc, error: String(error) })
        )
      )
  )
}

/** After an operator change (drain): use this snapshot now instead of waiting for the memo to expire. */
export function replaceSnapshot(snapshot: HealthSnapshot): void {
  if (!memo || snapshot.version >= memo.snapshot.version) memo = { snapshot, fetchedAt: Date.now() }
}
