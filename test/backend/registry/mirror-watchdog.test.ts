/**
 * The registry mirror watchdog against a real nats-server: a mirror that follows is reported level,
 * one behind the registry at every look for `stallAfterMs` is reported stalled (and left to the
 * operator), a missing one is created, a young one is never judged. The real stall (mirror-stall.ts) is
 * made on the test's nats-server 2.9.10, last, because it leaves every new mirror of the bucket broken;
 * the cases before it stand a plain stream under the mirror's name in for a mirror that never follows.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { jetstream, jetstreamManager, JetStreamApiError } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { Registry } from 'prom-client'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { natsAuth } from '../../support/nats-credentials.ts'
import {
  ensureRegistryMirrors,
  ensureRegistryStorage,
  type RegistryStorage,
} from '../../../backend/registry/buckets.ts'
import { MirrorWatchdog } from '../../../backend/registry/mirror-watchdog.ts'
import { createLogger } from '../../../backend/runtime/logger.ts'
import { kvStreamName, registryMirrorBucket } from '#shared/releases.ts'

const mirrorStream = kvStreamName(registryMirrorBucket('us'))
let nats: TestNatsServer
let nc: NatsConnection
let storage: RegistryStorage

beforeAll(async () => {
  nats = await startNatsServer('mirror-watchdog')
  nc = await connect({ servers: nats.url, ...natsAuth() })
  storage = await ensureRegistryStorage(nc, 1)
})
afterAll(async () => {
  await nc?.close()
  await nats?.dispose()
})

const jsm = () => jetstreamManager(nc, { checkAPI: false })
const write = async (n: number) => {
  for (let i = 0; i < n; i++) await storage.kv.put(`key.${Date.now()}.${i}`, { i })
}
const mirrorInfo = async () => (await jsm()).streams.info(mirrorStream)
const originLastSeq = async () => (await (await jsm()).streams.info('KV_registry')).state.last_seq

const watchdog = (metrics = new Registry()) =>
  new MirrorWatchdog(nc, {
    regions: ['us'],
    intervalMs: 60_000,
    stallAfterMs: 30_000,
    log: createLogger({ service: 'test', dc: 'test' }, 'silent'),
    metrics,
  })

beforeEach(async () => {
  await (await jsm()).streams.delete(mirrorStream).catch((err: unknown) => {
    if (!(err instanceof JetStreamApiError)) throw err
  })
})

async function until(what: string, ok: () => Promise<boolean>) {
  for (let i = 0; i < 100; i++) {
    if (await ok()) return
    await sleep(100)
  }
  throw new Error(`never: ${what}`)
}

describe('the registry mirror watchdog', () => {
  it('leaves a mirror that follows alone, however long', async () => {
    await ensureRegistryMirrors(nc, ['us'])
    const created = (await mirrorInfo()).created
    const dog = watchdog()
    const t0 = Date.now() + 60_000
    for (const at of [0, 40_000, 80_000, 120_000]) {
      await write(3)
      await until(
        'the mirror follows',
        async () => (await mirrorInfo()).state.last_seq === (await originLastSeq())
      )
      const [check] = await dog.check(t0 + at)
      expect(check).toEqual({ region: 'us', state: 'following', behind: 0 })
    }
    expect((await mirrorInfo()).created).toBe(created)
  })

  it('reports a mirror behind the registry at every look for 30 s as stalled, and leaves it', async () => {
    // A stream under the mirror's name that mirrors nothing: it stands still as a stalled mirror does.
    await (await jsm()).streams.add({ name: mirrorStream, subjects: ['stalled.us'], storage: 'file' })
    const created = (await mirrorInfo()).created
    await write(2)
    const metrics = new Registry()
    const dog = watchdog(metrics)
    const t0 = Date.now() + 60_000 // past the young mirror's grace
    const behind = await originLastSeq()
    expect(await dog.check(t0)).toEqual([{ region: 'us', state: 'catching-up', behind }])
    expect(await dog.check(t0 + 29_000)).toEqual([{ region: 'us', state: 'catching-up', behind }])
    expect(await metrics.metrics()).toContain('releases_registry_mirror_stalled{region="us"} 0')
    expect(await dog.check(t0 + 30_000)).toEqual([{ region: 'us', state: 'stalled', behind }])
    const text = await metrics.metrics()
    expect(text).toContain('releases_registry_mirror_stalled{region="us"} 1')
    expect(text).toContain(`releases_registry_mirror_behind{region="us"} ${behind}`)
    expect((await mirrorInfo()).created).toBe(created)
  })

  it('never judges a young mirror, and starts over at a look that finds it level', async () => {
    await (await jsm()).streams.add({ name: mirrorStream, subjects: ['stalled.us'], storage: 'file' })
    await write(1)
    const dog = watchdog()
    // Created just now: young, however long it has been behind by the watchdog's clock.
    const now = Date.now()
    expect((await dog.check(now))[0]!.state).toBe('catching-up')
    expect((await dog.check(now + 29_000))[0]!.state).toBe('catching-up')
    // Made level with the registry at one look: its own messages up to the origin's last sequence.
    const level = await originLastSeq()
    while ((await mirrorInfo()).state.last_seq < level) await nc.request('stalled.us', new Uint8Array(0))
    const later = Date.now() + 60_000
    expect((await dog.check(later))[0]).toEqual({ region: 'us', state: 'following', behind: 0 })
    await write(1)
    expect((await dog.check(later + 1_000))[0]!.state).toBe('catching-up')
    expect((await dog.check(later + 30_999))[0]!.state).toBe('catching-up')
    expect((await dog.check(later + 31_000))[0]!.state).toBe('stalled')
  })

  it('creates a mirror that is missing', async () => {
    await write(1)
    expect(await watchdog().check(Date.now())).toEqual([{ region: 'us', state: 'created' }])
    await until(
      'the created mirror catches up',
      async () => (await mirrorInfo()).state.last_seq === (await originLastSeq())
    )
  })

  it('does nothing while the registry cannot be reached', async () => {
    const closed = await connect({ servers: nats.url, ...natsAuth() })
    await closed.close()
    const dog = new MirrorWatchdog(closed, {
      regions: ['us', 'ap'],
      intervalMs: 60_000,
      stallAfterMs: 30_000,
      log: createLogger({ service: 'test', dc: 'test' }, 'silent'),
      metrics: new Registry(),
    })
    expect(await dog.check(Date.now())).toEqual([
      { region: 'us', state: 'unreachable' },
      { region: 'ap', state: 'unreachable' },
    ])
  })

  it('reports the real stall of nats-server before 2.12 (last: every new mirror of this bucket breaks)', async () => {
    // A key written by compare-and-set, its first revision gone (history 1): a fresh mirror drops that
    // message and stores the rest one sequence off, dropping every later compare-and-set write.
    const key = `cas.${Date.now()}`
    const first = await storage.kv.create(key, { n: 1 })
    const second = await storage.kv.update(key, { n: 2 }, first!)
    await ensureRegistryMirrors(nc, ['us'])
    await write(2)
    await storage.kv.update(key, { n: 3 }, second!)
    await write(1)
    // Until the mirror has taken everything it will take: its last sequence stands for half a second.
    for (let last = -1, now = (await mirrorInfo()).state.last_seq; now !== last;) {
      await sleep(500)
      ;[last, now] = [now, (await mirrorInfo()).state.last_seq]
    }
    const mirrorKv = await new Kvm(jetstream(nc)).open('registry', { streamName: mirrorStream })
    const mirrored = await mirrorKv.get(key)
    expect(
      mirrored?.json<{ n: number }>().n ?? null,
      'the premise: this nats-server drops the update'
    ).not.toBe(3)
    const metrics = new Registry()
    const dog = watchdog(metrics)
    const created = (await mirrorInfo()).created
    const t0 = Date.now() + 60_000
    const behind = (await originLastSeq()) - (await mirrorInfo()).state.last_seq
    expect(behind).toBeGreaterThan(0)
    expect(await dog.check(t0)).toEqual([{ region: 'us', state: 'catching-up', behind }])
    await write(1)
    // The mirror takes the plain write (one sequence off, still as far behind) before the next look.
    const origin = await originLastSeq()
    await until(
      'the mirror takes the plain write',
      async () => (await mirrorInfo()).state.last_seq === origin - behind
    )
    expect(await dog.check(t0 + 30_000)).toEqual([{ region: 'us', state: 'stalled', behind }])
    expect((await mirrorInfo()).created).toBe(created)
    expect(await metrics.metrics()).toContain('releases_registry_mirror_stalled{region="us"} 1')
  })
})
