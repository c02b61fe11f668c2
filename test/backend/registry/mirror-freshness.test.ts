/**
 * A web service reads around its region's registry mirror once the mirror no longer follows Europe's
 * (mirror-freshness.ts), against a real nats-server with the web user's own permissions. The mirror is
 * broken as nats-server 2.9.10 (the tests' server) breaks one (mirror-stall.ts): made fresh from a
 * registry whose module record was written by compare-and-set, it drops that write and every later
 * one, so a new version never reaches it. Until the stall is judged the reader serves the mirror's
 * copy; after, Europe's, read through the stream leader (not a direct get, which a mirror may answer);
 * while the mirror is missing, Europe's too; with Europe unreachable, the mirror's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection, Subscription } from '@nats-io/nats-core'
import { jetstreamManager } from '@nats-io/jetstream'
import { kvStreamName, registryBuckets, registryMirrorBucket } from '#shared/releases.ts'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { natsAuth } from '../../support/nats-credentials.ts'
import { ensureRegistryMirrors, ensureRegistryStorage } from '../../../backend/registry/buckets.ts'
import { RegistryReader } from '../../../backend/registry/reader.ts'
import { RegistryWriter } from '../../../backend/registry/writer.ts'
import { MirrorFreshness } from '../../../backend/registry/mirror-freshness.ts'
import { createLogger } from '../../../backend/runtime/logger.ts'
import { packagedEntry } from '../../support/packaged-entry.ts'

const origin = kvStreamName(registryBuckets.kv)
const mirror = kvStreamName(registryMirrorBucket('us'))
const log = createLogger({ service: 'web', dc: 'nyc3' }, 'silent')

let nats: TestNatsServer
let operator: NatsConnection
let web: NatsConnection
let writer: RegistryWriter

const publish = (version: string, releaseId: number) =>
  writer.commitVersion({
    moduleId: 'dice',
    title: 'dice',
    repository: 'o/r',
    entry: packagedEntry({
      id: 'dice',
      version,
      repository: 'o/r',
      repositoryId: 7,
      releaseId,
      baseUrl: 'https://vtta.io',
    }),
  })

/** The JetStream API requests the server sees reading the registry: which kind, of which stream. */
function registryReads(): { seen: () => string[]; stop: () => void } {
  const seen: string[] = []
  const subs: Subscription[] = ['$JS.API.DIRECT.GET.>', '$JS.API.STREAM.MSG.GET.>'].map((subject) =>
    operator.subscribe(subject, {
      callback: (_err, msg) => {
        // $JS.API.DIRECT.GET.<stream>.<key subject…> or $JS.API.STREAM.MSG.GET.<stream>
        const t = msg.subject.split('.')
        seen.push(t[2] === 'DIRECT' ? `DIRECT.GET ${t[4]}` : `STREAM.MSG.GET ${t[5]}`)
      },
    })
  )
  return { seen: () => [...new Set(seen)], stop: () => subs.forEach((s) => s.unsubscribe()) }
}

beforeAll(async () => {
  nats = await startNatsServer('registry-fresh', { scope: 'nyc3', region: 'us', mirrorRegions: ['us'] })
  operator = await connect({ servers: nats.url, ...natsAuth() })
  web = await connect({ servers: nats.url, ...natsAuth('web') })
  writer = new RegistryWriter(await ensureRegistryStorage(operator, 1))
  await publish('1.0.0', 1)
  await publish('1.1.0', 2)
  await ensureRegistryMirrors(operator, ['us'])
  await publish('1.2.0', 3)
})
afterAll(async () => {
  await web?.close()
  await operator?.close()
  await nats?.dispose()
})

describe("a web service whose region's mirror no longer follows", () => {
  it("serves the mirror's copy until the stall is judged, then Europe's through its leader", async () => {
    const freshness = new MirrorFreshness(web, {
      region: 'us',
      intervalMs: 60_000,
      stallAfterMs: 30_000,
      log,
    })
    const reader = new RegistryReader(web, { mirrorRegion: 'us', freshness })
    const t0 = Date.now() + 60_000
    expect(await freshness.check(t0)).toBe(false)
    const before = registryReads()
    const stale = await reader.getModule('dice')
    await operator.flush()
    // The premise: the broken mirror never got 1.2.0 (nor, made after it, 1.1.0's record).
    expect(stale?.latest.stable ?? null).not.toBe('1.2.0')
    expect(before.seen()).toEqual([`DIRECT.GET ${mirror}`])
    before.stop()

    expect(await freshness.check(t0 + 29_000)).toBe(false)
    expect(await freshness.check(t0 + 30_000)).toBe(true)
    const after = registryReads()
    expect((await reader.getModule('dice'))?.versions.map((v) => v.version)).toEqual([
      '1.0.0',
      '1.1.0',
      '1.2.0',
    ])
    await operator.flush()
    expect(after.seen()).toEqual([`STREAM.MSG.GET ${origin}`])
    after.stop()
  })

  it("reads Europe's while the mirror is missing, and the mirror's while Europe cannot be reached", async () => {
    const freshness = new MirrorFreshness(web, {
      region: 'us',
      intervalMs: 60_000,
      stallAfterMs: 30_000,
      log,
    })
    const jsm = await jetstreamManager(operator)
    await jsm.streams.delete(mirror)
    expect(await freshness.check(Date.now())).toBe(true)
    await ensureRegistryMirrors(operator, ['us'])

    const closed = await connect({ servers: nats.url, ...natsAuth('web') })
    await closed.close()
    const cut = new MirrorFreshness(closed, { region: 'us', intervalMs: 60_000, stallAfterMs: 30_000, log })
    expect(await cut.check(Date.now() + 120_000)).toBe(false)
  })
})
