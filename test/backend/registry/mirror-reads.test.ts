/**
 * Registry reads outside the home region (issue #15): a web service whose region has a read mirror of
 * the registry reads the KV from that mirror (`KV_registry-<region>`), never from the origin across the
 * ocean; it reads the origin while the mirror does not exist yet and moves to the mirror once it does;
 * and it keeps answering from the mirror when the origin is gone, also after its server restarted. The
 * web service finds its mirror from the catalogue and its DC, as production's tasks do.
 * Against a real nats-server, with the web user's own permissions on a server of region `us`, and a
 * second client listening to the direct-get requests to see which stream each read asks.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection, Subscription } from '@nats-io/nats-core'
import { jetstreamManager } from '@nats-io/jetstream'
import { kvStreamName, registryBuckets, registryMirrorBucket } from '#shared/releases.ts'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { natsAuth } from '../../support/nats-credentials.ts'
import { startService, type TestService } from '../../support/backend-service.ts'
import { originProofHeaders } from '../../support/origin-proof.ts'
import { ensureRegistryMirrors, ensureRegistryStorage } from '../../../backend/registry/buckets.ts'
import { RegistryReader } from '../../../backend/registry/reader.ts'
import { RegistryWriter } from '../../../backend/registry/writer.ts'
import { packagedEntry } from '../../support/packaged-entry.ts'

const origin = kvStreamName(registryBuckets.kv)
const mirror = kvStreamName(registryMirrorBucket('us'))

let nats: TestNatsServer
/** The operator: writes as the release service would, and listens to the reads. */
let operator: NatsConnection
/** The web service's own user, with the permissions of a server in region `us`. */
let web: NatsConnection
let writer: RegistryWriter

const publish = (moduleId: string, version: string, releaseId: number) =>
  writer.commitVersion({
    moduleId,
    title: moduleId,
    repository: 'o/r',
    entry: packagedEntry({
      id: moduleId,
      version,
      repository: 'o/r',
      repositoryId: 7,
      releaseId,
      baseUrl: 'https://vtta.io',
    }),
  })

/** The streams the direct gets seen on the server ask (`$JS.API.DIRECT.GET.<stream>.…`). */
function directGets(): { streams: () => string[]; stop: () => void } {
  const seen: string[] = []
  const sub: Subscription = operator.subscribe('$JS.API.DIRECT.GET.>', {
    callback: (_err, msg) => {
      seen.push(msg.subject.split('.')[4] ?? '')
    },
  })
  return {
    streams: () => [...new Set(seen)],
    stop: () => sub.unsubscribe(),
  }
}

/** Until the mirror holds everything the origin has (the same last sequence). */
const mirrorCaughtUp = async () => {
  const jsm = await jetstreamManager(operator)
  const deadline = Date.now() + 10_000
  const last = (await jsm.streams.info(origin)).state.last_seq
  while ((await jsm.streams.info(mirror)).state.last_seq < last) {
    if (Date.now() > deadline) throw new Error(`the mirror never reached sequence ${last}`)
    await sleep(50)
  }
}

beforeAll(async () => {
  nats = await startNatsServer('registry-mirror', { scope: 'nyc3', region: 'us', mirrorRegions: ['us'] })
  operator = await connect({ servers: nats.url, ...natsAuth() })
  web = await connect({ servers: nats.url, ...natsAuth('web') })
  writer = new RegistryWriter(await ensureRegistryStorage(operator, 1))
  await publish('dice', '1.0.0', 1)
})
afterAll(async () => {
  await web?.close()
  await operator?.close()
  await nats?.dispose()
})

describe('a web service in a region with a read mirror', () => {
  it('reads the origin while the mirror does not exist, and its mirror once it does', async () => {
    const reader = new RegistryReader(web, { mirrorRegion: 'us' })
    const before = directGets()
    expect((await reader.getModule('dice'))?.latest.stable).toBe('1.0.0')
    await operator.flush()
    expect(before.streams()).toEqual([origin])
    before.stop()

    // The release service makes the mirror (as it does at start-up with REGISTRY_MIRROR_REGIONS).
    await ensureRegistryMirrors(operator, ['us'])
    await mirrorCaughtUp()
    // The reader looks for the mirror again within seconds.
    const after = directGets()
    const deadline = Date.now() + 10_000
    while (!after.streams().includes(mirror) && Date.now() < deadline) {
      expect((await reader.getModule('dice'))?.latest.stable).toBe('1.0.0')
      await operator.flush()
      await sleep(250)
    }
    after.stop()
    expect(after.streams()).toContain(mirror)
  })

  it('reads every record from the mirror, never from the origin', async () => {
    await publish('dice', '1.1.0', 2)
    await publish('cards', '2.0.0', 3)
    await mirrorCaughtUp()
    const reader = new RegistryReader(web, { mirrorRegion: 'us' })
    const gets = directGets()
    expect((await reader.getModule('dice'))?.latest.stable).toBe('1.1.0')
    expect((await reader.listModules()).map((m) => m.id)).toEqual(['cards', 'dice'])
    expect(await reader.getModule('nope')).toBeNull()
    await operator.flush()
    gets.stop()
    expect(gets.streams()).toEqual([mirror])
  })

  it('reads a zip from the home region (zips have no mirror), bound without asking it first', async () => {
    await writer.putZip('dice/1.1.0/2/module.zip', new TextEncoder().encode('PK zip bytes'))
    const reader = new RegistryReader(web, { mirrorRegion: 'us' })
    const zip = await reader.openZip('dice/1.1.0/2/module.zip')
    expect(zip?.info.size).toBe(12)
    expect(new TextDecoder().decode(await new Response(zip!.data).arrayBuffer())).toBe('PK zip bytes')
    expect(await reader.openZip('dice/9.9.9/9/module.zip')).toBeNull()
  })

  it('reads the origin in the home region (no mirror region given)', async () => {
    const reader = new RegistryReader(web)
    const gets = directGets()
    expect((await reader.getModule('cards'))?.latest.stable).toBe('2.0.0')
    await operator.flush()
    gets.stop()
    expect(gets.streams()).toEqual([origin])
  })

  it('keeps answering from the mirror with the origin gone, also after its server restarted', async () => {
    const reader = new RegistryReader(web, { mirrorRegion: 'us' })
    expect((await reader.getModule('dice'))?.latest.stable).toBe('1.1.0')
    // The origin is lost (as the home region is, seen from across a cut ocean).
    await (await jetstreamManager(operator)).streams.delete(origin)
    expect((await reader.getModule('dice'))?.latest.stable).toBe('1.1.0')
    await nats.stop()
    await nats.restart()
    // A reader made after the restart binds to the mirror alone.
    const fresh = new RegistryReader(web, { mirrorRegion: 'us' })
    const deadline = Date.now() + 15_000
    let value: string | undefined
    while (Date.now() < deadline) {
      value = await fresh.getModule('dice').then(
        (m) => m?.latest.stable ?? undefined,
        () => undefined
      )
      if (value) break
      await sleep(250)
    }
    expect(value).toBe('1.1.0')
  })
})

describe('the web service', () => {
  let service: TestService | undefined
  afterAll(async () => service?.stop())

  it('finds its mirror through the catalogue and its DC, as in production, and serves from it', async () => {
    // The origin is gone since the test above: whatever answers comes from us's mirror.
    service = await startService('web', {
      DC: 'nyc3',
      NATS_URL: nats.url,
      LOG_LEVEL: 'info',
      DATACENTERS_FILE: 'test/fixtures/datacenters/six-continents.json',
    })
    const res = await fetch(`${service.url}/api/modules/dice`, { headers: originProofHeaders() })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ id: 'dice', latest: { stable: '1.1.0' } })
    expect(await service.logs()).toContainEqual(
      expect.objectContaining({ msg: "registry read from the region's mirror", mirrorRegion: 'us' })
    )
  })
})

describe("the web user's permissions", () => {
  it("let it read its own region's mirror, and no other region's", async () => {
    const jsm = await jetstreamManager(web, { checkAPI: false })
    expect((await jsm.streams.info(mirror)).config.mirror?.name).toBe(origin)
    // ap's mirror is not the web user's of a server in us: the request is refused, not answered.
    await expect(jsm.streams.info(kvStreamName(registryMirrorBucket('ap')))).rejects.toThrow(
      /permission|timeout/i
    )
  })
})
