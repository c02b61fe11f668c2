/**
 * Holding a release claim (claim.ts) while its work runs, so the work itself never touches the lease:
 *
 *   const result = await withLease(claims, claim, async () => ({ record: { state: 'packaged', … }, result }))
 *
 *   - while `work` runs the lease is renewed every third of its length, one renewal at a time (each
 *     compare-and-sets the revision the previous one wrote);
 *   - when `work` returns, renewal stops, a renewal in flight is waited for, and only then is the
 *     record `work` returned written: the write compare-and-sets the latest revision, so it never
 *     races our own renewal;
 *   - when `work` (or that write) throws, renewal stops the same way and the claim is given up, so the
 *     retry need not wait for the lease to run out; the error goes on.
 *
 * Losing the claim to another worker (a renewal or the final write fails its compare-and-set) is not
 * an error here: correctness rests on the module record's compare-and-set (registry/writer.ts).
 */
import type { ReleaseRecord } from '../registry/records.ts'
import type { Claim, ReleaseClaims } from './claim.ts'

/** What `work` leaves behind: the claim's final record, and its own result. */
export interface LeaseEnd<T> {
  record: Partial<ReleaseRecord>
  result: T
}

export async function withLease<T>(
  claims: ReleaseClaims,
  claim: Claim,
  work: () => Promise<LeaseEnd<T>>
): Promise<T> {
  const renewal = renewEvery(claims, claim, Math.max(250, Math.floor(claims.leaseMs / 3)))
  try {
    const { record, result } = await work()
    await renewal.stop()
    await claims.finish(claim, record)
    return result
  } catch (err) {
    await renewal.stop()
    await claims.release(claim)
    throw err
  }
}

function renewEvery(claims: ReleaseClaims, claim: Claim, intervalMs: number): { stop(): Promise<void> } {
  let renewing: Promise<unknown> = Promise.resolve()
  const timer = setInterval(() => {
    // A failed renewal is a lost claim (or a passing NATS error): the next one tries again.
    renewing = renewing.then(() => claims.renew(claim)).catch(() => false)
  }, intervalMs)
  return {
    async stop() {
      clearInterval(timer)
      await renewing
    },
  }
}
