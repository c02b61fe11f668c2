/**
 * withLease (backend/releases/lease.ts) on a real registry bucket: the claim stays ours while the
 * work outlasts its lease, the outcome is written after renewal stops (never lost to our own
 * renewal), and failed work gives the claim up at once.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { ensureRegistryStorage } from '../../../backend/registry/buckets.ts'
import type { JsonKv } from '../../../backend/registry/kv-store.ts'
import { releaseRecordSchema } from '../../../backend/registry/records.ts'
import { ReleaseClaims, type Claim } from '../../../backend/releases/claim.ts'
import { withLease } from '../../../backend/releases/lease.ts'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { natsAuth } from '../../support/nats-credentials.ts'

const LEASE_MS = 300

let nats: TestNatsServer
let nc: NatsConnection
let kv: JsonKv
let ours: ReleaseClaims
let theirs: ReleaseClaims

beforeAll(async () => {
  nats = await startNatsServer('lease')
  nc = await connect({ servers: nats.url, ...natsAuth() })
  kv = (await ensureRegistryStorage(nc, 1)).kv
  ours = new ReleaseClaims(kv, 'us', LEASE_MS)
  theirs = new ReleaseClaims(kv, 'them', LEASE_MS)
})
afterAll(async () => {
  await nc?.close()
  await nats?.dispose()
})

let keys = 0
async function claimed(): Promise<Claim> {
  const acquired = await ours.acquire(
    `release.lease-test.${++keys}`,
    { channel: 'stable', delivery: null },
    () => {},
    0
  )
  if (acquired.kind !== 'claimed') throw new Error('a fresh key is always claimed')
  expect(acquired.first).toBe(true)
  return acquired.claim
}
const stored = async (key: string) => (await kv.get(key, releaseRecordSchema))?.value

describe('withLease', () => {
  it('keeps the claim while the work runs three leases long, then writes its outcome', async () => {
    const claim = await claimed()
    const result = await withLease(ours, claim, async () => {
      await sleep(LEASE_MS)
      // Another worker finds it held (it would wait, then give the delivery back for later).
      await expect(
        theirs.acquire(claim.key, { channel: 'stable', delivery: null }, () => {}, 2 * LEASE_MS)
      ).rejects.toThrow(/still being packaged by us/)
      return { record: { state: 'packaged', moduleId: 'leased', announced: ['stable'] }, result: 'done' }
    })
    expect(result).toBe('done')
    expect(await stored(claim.key)).toMatchObject({
      state: 'packaged',
      owner: 'us',
      leaseUntil: 0,
      moduleId: 'leased',
      announced: ['stable'],
    })
  })

  it('writes the outcome even when the work ends just as a renewal is on its way', async () => {
    // Renewal runs every 250 ms here: work ending around it must still get its write in (the write
    // waits for the renewal in flight and compare-and-sets the revision it left).
    for (let i = 0; i < 8; i++) {
      const claim = await claimed()
      await withLease(ours, claim, async () => {
        await sleep(240 + i * 3)
        return { record: { state: 'rejected', code: 'quota_exceeded', reason: `run ${i}` }, result: null }
      })
      expect(await stored(claim.key)).toMatchObject({ state: 'rejected', reason: `run ${i}`, leaseUntil: 0 })
    }
  })

  it('gives the claim up when the work fails, so a retry need not wait for the lease', async () => {
    const claim = await claimed()
    await expect(
      withLease(ours, claim, async () => {
        await sleep(10)
        throw new Error('GitHub is down')
      })
    ).rejects.toThrow('GitHub is down')
    expect(await stored(claim.key)).toMatchObject({ state: 'packaging', leaseUntil: 0 })
    const taken = await theirs.acquire(claim.key, { channel: 'stable', delivery: null }, () => {}, 0)
    // Taken over, not created: the registry may hold what the first run did.
    expect(taken).toMatchObject({ kind: 'claimed', first: false })
    expect(await stored(claim.key)).toMatchObject({ state: 'packaging', owner: 'them' })
  })

  it('answers done for a release packaged and announced, though its first try assumed no record', async () => {
    const claim = await claimed()
    await withLease(ours, claim, () =>
      Promise.resolve({ record: { state: 'packaged', moduleId: 'x', announced: ['stable'] }, result: null })
    )
    const again = await theirs.acquire(claim.key, { channel: 'stable', delivery: null }, () => {}, 0)
    expect(again.kind).toBe('done')
    expect(await stored(claim.key)).toMatchObject({ state: 'packaged', owner: 'us' })
  })

  it('stops renewing once the work is over', async () => {
    const claim = await claimed()
    await withLease(ours, claim, () => Promise.resolve({ record: { state: 'packaged' }, result: null }))
    const after = await kv.get(claim.key, releaseRecordSchema)
    await sleep(2 * LEASE_MS)
    expect((await kv.get(claim.key, releaseRecordSchema))?.revision).toBe(after?.revision)
  })
})
