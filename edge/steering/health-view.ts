/**
 * The request path's view of health (issue #16): a request reads its nearest vantage
 * (vantages/nearest-vantage.ts), through a per-isolate memo per vantage, asked again at most every
 * HEALTH_MEMO_MS. A request never waits for the Durable Object while a memo exists: a stale memo is
 * used as is and refreshed in the background.
 *
 * A datacenter is down for a request when the majority verdict says so, or when its own vantage's
 * view does (as Cloudflare's "regional health": a region steers around a datacenter it cannot reach,
 * while the others keep it), or when this isolate holds it out after a failure it saw itself. Such
 * failures are reported to the requester's vantage, where they count in that vantage's view only.
 *
 * The hold is kept per edge location (placement/edge-location.ts): a failure seen on the way from
 * one place says nothing of the way from another, and on a local run one isolate serves every place.
 */
import type { Context } from 'hono'
import type { AppEnv, Bindings } from '../env.ts'
import type { HealthSnapshot } from '../vantages/views.ts'
import { nearestVantage } from '../vantages/nearest-vantage.ts'
import { vantageStub, type Vantage } from '../vantages/vantage-set.ts'
import type { Availability } from './nearest.ts'

/** How long an isolate keeps a datacenter out of rotation after a failure it saw itself. */
const LOCAL_HOLD_MS = 5_000

interface Memo {
  snapshot: HealthSnapshot | undefined
  fetchedAt: number
  refreshStartedAt: number
}

/**
 * By HEALTH binding, then vantage id. Production has one binding; a test may pass a namespace of its
 * own (a separate set of vantages), whose snapshots must not stand in for the real ones.
 */
const memos = new WeakMap<object, Map<string, Memo>>()
/** By edge location, then datacenter: until when this isolate keeps it out of rotation. */
const heldUntil = new Map<string, Map<string, number>>()

/** Health as one request steers by it. */
export interface RequestHealth {
  /** Its vantage's snapshot; undefined while it has never answered (then every datacenter counts as up). */
  snapshot: HealthSnapshot | undefined
  /** Where the request entered the edge: whose holds apply to it. */
  edgeLocation: string
}

function memoOf(env: Pick<Bindings, 'HEALTH'>, vantage: string): Memo {
  let byVantage = memos.get(env.HEALTH)
  if (!byVantage) memos.set(env.HEALTH, (byVantage = new Map<string, Memo>()))
  let memo = byVantage.get(vantage)
  if (!memo) byVantage.set(vantage, (memo = { snapshot: undefined, fetchedAt: 0, refreshStartedAt: 0 }))
  return memo
}

/** Keeps `snapshot` unless the memo holds a newer one (a refresh may finish after an operator change). */
function keep(memo: Memo, snapshot: HealthSnapshot): void {
  if (!memo.snapshot || snapshot.version >= memo.snapshot.version) {
    memo.snapshot = snapshot
    memo.fetchedAt = Date.now()
  }
}

async function refresh(
  c: Context<AppEnv>,
  vantage: Vantage,
  memo: Memo
): Promise<HealthSnapshot | undefined> {
  memo.refreshStartedAt = Date.now()
  try {
    keep(memo, await vantageStub(c.env, vantage).snapshot())
  } catch (error) {
    console.error(
      JSON.stringify({
        level: 'error',
        requestId: c.get('requestId'),
        msg: 'health vantage unreachable',
        vantage: vantage.id,
        error: String(error),
      })
    )
  }
  return memo.snapshot
}

/** The vantage that serves this request: the one nearest to where it entered the edge. */
export const requestVantage = (c: Context<AppEnv>): Vantage =>
  nearestVantage(c.get('config'), c.get('edgeLocation'))

async function currentSnapshot(c: Context<AppEnv>): Promise<HealthSnapshot | undefined> {
  const vantage = requestVantage(c)
  const memo = memoOf(c.env, vantage.id)
  const now = Date.now()
  const memoMs = c.get('config').health.memoMs
  if (!memo.snapshot) return refresh(c, vantage, memo)
  if (now - memo.fetchedAt >= memoMs && now - memo.refreshStartedAt >= memoMs) {
    c.executionCtx.waitUntil(refresh(c, vantage, memo))
  }
  return memo.snapshot
}

/** The health this request steers by: its vantage's snapshot, and where the request entered the edge. */
export async function healthSnapshot(c: Context<AppEnv>): Promise<RequestHealth> {
  return { snapshot: await currentSnapshot(c), edgeLocation: c.get('edgeLocation').id }
}

export function availability(health: RequestHealth, dc: string, now = Date.now()): Availability {
  const { snapshot } = health
  const verdict = snapshot?.datacenters[dc]
  if (verdict?.drained) return 'drained'
  const regional = snapshot?.views[snapshot.vantage]?.datacenters[dc]
  const held = heldUntil.get(health.edgeLocation)?.get(dc) ?? 0
  if (held > now || (verdict && !verdict.up) || (regional && !regional.up)) return 'down'
  return 'available'
}

/** Records a failure of `dc` seen on the request path: held here, and reported to the request's vantage. */
export function reportFailure(c: Context<AppEnv>, dc: string, reason: string): void {
  const location = c.get('edgeLocation').id
  let holds = heldUntil.get(location)
  if (!holds) heldUntil.set(location, (holds = new Map<string, number>()))
  holds.set(dc, Date.now() + LOCAL_HOLD_MS)
  const vantage = requestVantage(c)
  c.executionCtx.waitUntil(
    vantageStub(c.env, vantage)
      .report(dc, reason)
      .catch((error: unknown) =>
        console.error(
          JSON.stringify({
            level: 'error',
            msg: 'health report failed',
            dc,
            vantage: vantage.id,
            error: String(error),
          })
        )
      )
  )
}

/** After an operator change (drain): use a vantage's answer now instead of waiting for the memo to expire. */
export function replaceSnapshot(env: Pick<Bindings, 'HEALTH'>, snapshot: HealthSnapshot): void {
  if (snapshot.vantage) keep(memoOf(env, snapshot.vantage), snapshot)
}
