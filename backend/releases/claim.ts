/**
 * Release claims: which worker packages one (repository, release, version) right now.
 *
 * The claim is a lease in the release's ReleaseRecord, taken with create-if-absent or
 * compare-and-set, renewed while the work runs, and taken over by another worker only after it
 * expired (the holder crashed). A second event for a release that is being packaged waits for the
 * holder instead of doing the work twice. The claim only saves duplicate work: correctness rests on
 * the module record's compare-and-set (registry/writer.ts), so a worker that lost its lease while
 * paused can do no harm.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Channel, RejectionCode } from '#shared/releases.ts'
import type { JsonKv } from '../registry/kv-store.ts'
import { releaseRecordSchema, type ReleaseRecord } from '../registry/records.ts'

export interface Claim {
  key: string
  revision: number
  record: ReleaseRecord
}

export type Acquired =
  /**
   * `first`: no worker had claimed this release before (the claim was created, not taken over),
   * so no other run of it can have changed the registry while this one was claiming it.
   */
  | { kind: 'claimed'; claim: Claim; first: boolean }
  /** Packaged in this channel (or stable) and its `packaged` event published: nothing to do. */
  | { kind: 'done'; record: ReleaseRecord }

export class ReleaseClaims {
  readonly #kv: JsonKv
  readonly #owner: string
  readonly leaseMs: number

  constructor(kv: JsonKv, owner: string, leaseMs: number) {
    this.#kv = kv
    this.#owner = owner
    this.leaseMs = leaseMs
  }

  /**
   * Claims the release, waiting (polling, calling `keepAlive`) while another live worker holds it,
   * up to `maxWaitMs`; then throws so the delivery is retried later. The first try assumes no
   * record (nearly every release is new): one create instead of a read and a create.
   */
  async acquire(
    key: string,
    want: { channel: Channel; delivery: string | null },
    keepAlive: () => void,
    maxWaitMs: number
  ): Promise<Acquired> {
    const deadline = Date.now() + maxWaitMs
    for (let attempt = 0; ; attempt++) {
      const current = attempt === 0 ? null : await this.#kv.get(key, releaseRecordSchema)
      const now = Date.now()
      const record = current?.value
      if (record?.state === 'packaged') {
        const covered = record.channel === want.channel || record.channel === 'stable'
        if (covered && record.announced.includes(record.channel)) return { kind: 'done', record }
      }
      const holder =
        record?.state === 'packaging' && record.leaseUntil > now && record.owner !== this.#owner
          ? record.owner
          : null
      if (holder === null) {
        const next: ReleaseRecord = {
          state: 'packaging',
          owner: this.#owner,
          leaseUntil: now + this.leaseMs,
          // A stable record is never demoted by a late beta event.
          channel: record?.state === 'packaged' && record.channel === 'stable' ? 'stable' : want.channel,
          moduleId: record?.moduleId ?? null,
          announced: record?.announced ?? [],
          code: null,
          reason: null,
          delivery: want.delivery,
          updatedAt: new Date(now).toISOString(),
        }
        const revision = await this.#kv.write(key, next, current?.revision ?? null)
        if (revision !== null)
          return { kind: 'claimed', claim: { key, revision, record: next }, first: attempt === 0 }
        continue
      }
      if (Date.now() > deadline) throw new Error(`${key} is still being packaged by ${holder}`)
      keepAlive()
      await sleep(250)
    }
  }

  /** Extends the lease; false when another worker has taken the claim over. */
  async renew(claim: Claim): Promise<boolean> {
    const next = { ...claim.record, leaseUntil: Date.now() + this.leaseMs }
    const revision = await this.#kv.update(claim.key, next, claim.revision)
    if (revision === null) return false
    claim.revision = revision
    claim.record = next
    return true
  }

  /** Writes the outcome; false when the claim was lost (the new holder will write its own). */
  async finish(claim: Claim, patch: Partial<ReleaseRecord>): Promise<boolean> {
    const next: ReleaseRecord = {
      ...claim.record,
      ...patch,
      owner: this.#owner,
      leaseUntil: 0,
      updatedAt: new Date().toISOString(),
    }
    const revision = await this.#kv.update(claim.key, next, claim.revision)
    if (revision === null) return false
    claim.revision = revision
    claim.record = next
    return true
  }

  rejected(claim: Claim, code: RejectionCode, reason: string, moduleId: string | null): Promise<boolean> {
    return this.finish(claim, { state: 'rejected', code, reason, moduleId })
  }

  /** Gives the claim up after a transient failure, so the retry need not wait for the lease. */
  async release(claim: Claim): Promise<void> {
    await this.#kv.update(claim.key, { ...claim.record, leaseUntil: 0 }, claim.revision).catch(() => null)
  }
}
