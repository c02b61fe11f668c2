/**
 * The release pipeline as processes: deliveries published to JetStream as the edge publishes them,
 * a real release service, notifier and web service, the GitHub and Discord stand-ins.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { strFromU8, unzipSync } from 'fflate'
import { Kvm } from '@nats-io/kv'
import { Objm } from '@nats-io/obj'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { deliveryFixture, PURGE_TOKEN, startPipeline, type Pipeline } from '../../support/release-pipeline.ts'
import type { TestService } from '../../support/backend-service.ts'
import { killProcess } from '../../../local/processes.ts'
import { isNewerVersion } from '../../../backend/registry/foundry-version.ts'
import { headers as natsHeaders } from '@nats-io/nats-core'
import {
  deadLetterHeaders,
  deadLetterStream,
  deliveryMsgId,
  githubDeliverySubject,
  githubHeaders,
  type RejectionCode,
} from '#shared/releases.ts'
import { zipObjectPath, type Delivery, type FixtureName } from '../../../local/stand-ins/github/index.ts'
import { apiDocument, firstEmbed, jsonObject, manifestDocument, type ManifestDocument } from './documents.ts'

let nats: TestNatsServer
let p: Pipeline
/** The release service currently running (the crash test replaces it). */
let releases: TestService

beforeAll(async () => {
  nats = await startNatsServer('releases')
  p = await startPipeline({ natsUrls: [nats.url], replicas: 1 })
  releases = p.releases[0]!
})
afterAll(async () => {
  await p?.stop()
  await nats?.dispose()
})

const poll = <T>(fn: () => Promise<T> | T, timeout = 10_000) => expect.poll(fn, { timeout, interval: 50 })

/**
 * Every registry record that is module data (not claims, rejection notes, enrollments and their
 * audit records, or notice marks), and every stored zip.
 */
async function registrySnapshot(): Promise<Record<string, string>> {
  const kv = await new Kvm(p.nc).open('registry')
  const snapshot: Record<string, string> = {}
  for await (const key of await kv.keys()) {
    if (/^(release|rejection|notice|enrolled|audit)\./.test(key)) continue
    snapshot[key] = (await kv.get(key))!.string()
  }
  const zips = await new Objm(p.nc).open('module-zips')
  for (const info of await zips.list()) snapshot[`object:${info.name}`] = info.digest
  return snapshot
}

async function packagedFor(repositoryId: number, releaseId: number, channel?: string) {
  return (await p.packaged()).filter(
    (e) => e.repositoryId === repositoryId && e.releaseId === releaseId && (!channel || e.channel === channel)
  )
}
/** Discord announcements of one module version (its embed's Version field and manifest URL). */
const callsFor = (moduleId: string, version: string) =>
  p.announcements().filter((c) => {
    const fields = firstEmbed(c.body)?.fields ?? []
    return (
      fields.some((f) => f.name === 'Version' && f.value === version) &&
      fields.some((f) => /manifest url$/i.test(f.name) && f.value.includes(`/modules/${moduleId}/`))
    )
  })

/** A JSON answer of the web service's module API. */
const apiJson = async (path: string) => apiDocument(await p.api(path))

/** Publishes a stand-in delivery and waits for its `packaged` event. */
async function release(
  fixture: FixtureName,
  opts: Parameters<Pipeline['gh']['delivery']>[1] = {}
): Promise<Delivery> {
  const d = await p.gh.delivery(fixture, opts)
  await p.publish(d)
  await poll(
    async () => (await packagedFor(d.spec.repositoryId, d.spec.releaseId)).length,
    15_000
  ).toBeGreaterThan(0)
  return d
}

/** What Foundry does to update an installed module: fetch its manifest URL, compare, download. */
async function foundryUpdateCheck(installed: { version: string; manifest: string }) {
  const remote = (await (await fetch(installed.manifest)).json()) as {
    version: string
    download: string
    id: string
  }
  return { newer: isNewerVersion(remote.version, installed.version), remote }
}

/** The module.json inside a zip served at `url`. */
async function zipManifest(url: string): Promise<ManifestDocument> {
  const res = await fetch(url)
  expect(res.status).toBe(200)
  const files = unzipSync(new Uint8Array(await res.arrayBuffer()))
  const name = Object.keys(files).find((n) => n === 'module.json' || /^[^/]+\/module\.json$/.test(n))!
  return manifestDocument(JSON.parse(strFromU8(files[name]!)))
}

describe('the signed delivery fixtures, published as the edge publishes them', () => {
  const hello = { repositoryId: 186853002, releaseId: 17372790 }

  it('release-published: packaged, downloadable with our URLs, announced once', async () => {
    const ack = await p.publish(deliveryFixture('release-published'))
    expect(ack.duplicate).toBe(false)
    await poll(async () => (await packagedFor(hello.repositoryId, hello.releaseId)).length).toBe(1)
    const [event] = await packagedFor(hello.repositoryId, hello.releaseId)
    expect(event).toMatchObject({
      moduleId: 'hello-world',
      version: '0.0.1',
      channel: 'stable',
      tag: '0.0.1',
    })

    const manifest = manifestDocument(await (await fetch(event!.manifestUrl)).json())
    expect(manifest).toMatchObject({
      id: 'hello-world',
      version: '0.0.1',
      manifest: `${p.edge.url}/modules/hello-world/module.json`,
      download: `${p.edge.url}/modules/hello-world/0.0.1/module.zip`,
    })
    const inZip = await zipManifest(manifest.download)
    expect(inZip).toMatchObject({
      id: 'hello-world',
      version: '0.0.1',
      manifest: manifest.manifest,
      download: manifest.download,
    })
    await poll(() => callsFor('hello-world', '0.0.1').length).toBe(1)
    await poll(() => p.edge.purges.some((x) => x.paths.includes('/modules/hello-world/module.json'))).toBe(
      true
    )
    expect(p.edge.purges[0]).toEqual({
      authorization: `Bearer ${PURGE_TOKEN}`,
      paths: [
        '/modules/hello-world/module.json',
        '/modules/hello-world/beta/module.json',
        '/api/modules',
        '/api/modules/hello-world',
      ],
    })
  })

  it('release-published-redelivery (same X-GitHub-Delivery): stored once by the stream', async () => {
    const before = await registrySnapshot()
    const ack = await p.publish(deliveryFixture('release-published-redelivery'))
    expect(ack.duplicate).toBe(true)
    expect(await registrySnapshot()).toEqual(before)
  })

  it('release-released, -published-with-assets, -prereleased for the same release: nothing changes', async () => {
    const before = await registrySnapshot()
    for (const name of ['release-released', 'release-published-with-assets', 'release-prereleased'])
      expect((await p.publish(deliveryFixture(name))).duplicate).toBe(false)
    await poll(
      async () => (await releases.logs()).filter((l) => l.msg === 'delivery handled').length
    ).toBeGreaterThanOrEqual(4)
    const outcomes = (await releases.logs())
      .filter((l) => l.msg === 'delivery handled')
      .map((l) => [l.action, l.outcome])
    expect(outcomes).toEqual(
      expect.arrayContaining([
        ['released', 'duplicate'],
        ['prereleased', 'duplicate'],
      ])
    )
    expect(await registrySnapshot()).toEqual(before)
    expect(await packagedFor(hello.repositoryId, hello.releaseId)).toHaveLength(1)
    expect(callsFor('hello-world', '0.0.1')).toHaveLength(1)
  })

  it('release-created and ping: acknowledged and ignored', async () => {
    // A ping is not a release event: it is counted as another event, ignored, and logs nothing.
    const otherIgnored = async () => {
      const text = await (await fetch(`${releases.internalUrl}/metrics`)).text()
      const line = /releases_deliveries_total\{action="other",outcome="ignored"[^}]*\} (\d+)/.exec(text)
      return Number(line?.[1] ?? 0)
    }
    const before = await registrySnapshot()
    const ignoredBefore = await otherIgnored()
    await p.publish(deliveryFixture('release-created'))
    await p.publish(deliveryFixture('ping'))
    await poll(async () =>
      (await releases.logs()).some((l) => l.msg === 'delivery handled' && l.action === 'created')
    ).toBe(true)
    expect((await releases.logs()).find((l) => l.action === 'created')).toMatchObject({ outcome: 'ignored' })
    await poll(otherIgnored).toBe(ignoredBefore + 1)
    expect(await registrySnapshot()).toEqual(before)
  })

  it('release-deleted while GitHub still serves the release: nothing changes', async () => {
    const before = await registrySnapshot()
    // A forged (or stale) `deleted`: other bytes than the fixture, same repository and release.
    const fixture = deliveryFixture('release-deleted')
    const forged = { ...jsonObject(fixture.body), sender: { login: 'mallory' } }
    await p.publish({
      headers: { ...fixture.headers, 'X-GitHub-Delivery': 'forged-deleted' },
      body: JSON.stringify(forged),
    })
    await poll(async () =>
      (await releases.logs()).some((l) => l.msg === 'delivery handled' && l.action === 'deleted')
    ).toBe(true)
    expect((await releases.logs()).find((l) => l.action === 'deleted')).toMatchObject({
      outcome: 'not_deleted',
    })
    expect(await registrySnapshot()).toEqual(before)
    expect((await p.api('/modules/hello-world/module.json')).status).toBe(200)
  })

  it('release-deleted once GitHub answers 404: the version leaves the listing, its zip stays downloadable', async () => {
    const zipUrl = `${p.edge.url}/modules/hello-world/0.0.1/module.zip`
    p.gh.removeRelease(hello.releaseId)
    await p.publish(deliveryFixture('release-deleted'))
    await poll(async () => (await apiJson('/api/modules/hello-world')).versions).toEqual([])
    expect((await p.api('/api/modules/hello-world')).status).toBe(200)
    expect((await p.api('/modules/hello-world/module.json')).status).toBe(404)
    expect((await fetch(zipUrl)).status).toBe(200)
    const release = await apiJson('/api/modules/hello-world/releases/0.0.1')
    expect(release).toMatchObject({ status: 'deleted', version: '0.0.1' })
    // A late `released` for the deleted release (other bytes: the same would be a stream duplicate)
    // brings nothing back.
    const released = deliveryFixture('release-released')
    await p.publish({
      headers: { ...released.headers, 'X-GitHub-Delivery': 'late-released' },
      body: JSON.stringify({ ...jsonObject(released.body), sender: { login: 'late' } }),
    })
    await poll(
      async () =>
        (await releases.logs()).filter((l) => l.msg === 'delivery handled' && l.delivery === 'late-released')
          .length
    ).toBe(1)
    expect((await p.api('/modules/hello-world/module.json')).status).toBe(404)
  })
})

describe('the fixture modules, released through the GitHub stand-in', () => {
  const modules: FixtureName[] = ['test-module', 'ddb-importer', 'item-piles', 'lib-wrapper', 'vtta-core']

  it.each(modules)(
    '%s: packaged, downloadable, and the next version reaches a Foundry update check',
    async (fixture) => {
      const first = await release(fixture, { version: '1.0.0' })
      const [event] = await packagedFor(first.spec.repositoryId, first.spec.releaseId)
      const installed = await zipManifest(event!.downloadUrl)
      expect(installed.version).toBe('1.0.0')
      expect(installed.manifest).toBe(`${p.edge.url}/modules/${event!.moduleId}/module.json`)
      expect(installed.download).toBe(`${p.edge.url}/modules/${event!.moduleId}/1.0.0/module.zip`)

      expect(
        (await foundryUpdateCheck({ version: installed.version, manifest: installed.manifest })).newer
      ).toBe(false)
      await release(fixture, { version: '1.1.0', notes: 'Faster piles' })
      const check = await foundryUpdateCheck({ version: installed.version, manifest: installed.manifest })
      expect(check.newer).toBe(true)
      expect(check.remote.version).toBe('1.1.0')
      const updated = await zipManifest(check.remote.download)
      expect(updated.id ?? updated.name).toBe(event!.moduleId)
      expect(updated.version).toBe('1.1.0')

      await poll(() => callsFor(event!.moduleId, '1.0.0').length).toBe(1)
      await poll(() => callsFor(event!.moduleId, '1.1.0').length).toBe(1)
    }
  )

  it('a second `released` for the same release changes nothing', async () => {
    const d = await release('item-piles', { version: '1.2.0' })
    const before = await registrySnapshot()
    const again = await p.gh.delivery('item-piles', { version: '1.2.0', action: 'released' })
    await p.publish(again)
    await poll(async () => (await releases.logs()).some((l) => l.delivery === again.deliveryId)).toBe(true)
    expect((await releases.logs()).find((l) => l.delivery === again.deliveryId)).toMatchObject({
      outcome: 'duplicate',
    })
    expect(await registrySnapshot()).toEqual(before)
    expect(await packagedFor(d.spec.repositoryId, d.spec.releaseId)).toHaveLength(1)
    await poll(() => callsFor('item-piles', '1.2.0').length).toBe(1)
  })

  it('a pre-release goes to the beta channel only; the stable manifest does not move', async () => {
    const stableBefore = await (await p.api('/modules/lib-wrapper/module.json')).text()
    const d = await release('lib-wrapper', { version: '2.0.0-beta.1', prerelease: true, notes: 'beta words' })
    const [event] = await packagedFor(d.spec.repositoryId, d.spec.releaseId)
    expect(event).toMatchObject({
      channel: 'beta',
      notes: 'beta words',
      manifestUrl: `${p.edge.url}/modules/lib-wrapper/beta/module.json`,
    })
    expect(await (await p.api('/modules/lib-wrapper/module.json')).text()).toBe(stableBefore)
    expect((await apiJson('/modules/lib-wrapper/beta/module.json')).version).toBe('2.0.0-beta.1')
    expect(await apiJson('/api/modules/lib-wrapper')).toMatchObject({
      latest: { stable: '1.1.0', beta: '2.0.0-beta.1' },
    })

    // Then the pre-release is made a full release (`released`, same release): promoted, announced as
    // stable, quoting the notes GitHub serves now.
    await p.publish(
      await p.gh.delivery('lib-wrapper', {
        version: '2.0.0-beta.1',
        prerelease: false,
        action: 'released',
        notes: 'final words',
      })
    )
    await poll(async () => (await packagedFor(d.spec.repositoryId, d.spec.releaseId, 'stable')).length).toBe(
      1
    )
    const [stable] = await packagedFor(d.spec.repositoryId, d.spec.releaseId, 'stable')
    expect(stable).toMatchObject({ channel: 'stable', notes: 'final words' })
    expect((await apiJson('/modules/lib-wrapper/module.json')).version).toBe('2.0.0-beta.1')
    await poll(() => callsFor('lib-wrapper', '2.0.0-beta.1').length).toBe(2)
  })

  it('`edited` changes the release notes and nothing else', async () => {
    const d = await release('vtta-core', { version: '1.2.0', notes: 'first words' })
    const before = await registrySnapshot()
    const manifest = await p.api('/modules/vtta-core/1.2.0/module.json')
    const edited = await p.gh.delivery('vtta-core', {
      version: '1.2.0',
      action: 'edited',
      notes: 'better words',
    })
    await p.publish(edited)
    await poll(async () => (await apiJson('/api/modules/vtta-core/releases/1.2.0')).notes).toBe(
      'better words'
    )
    const after = await registrySnapshot()
    const changed = Object.keys(after).filter((k) => after[k] !== before[k])
    expect(changed).toEqual(['notes.vtta-core.1=2E2=2E0'])
    expect((await p.api('/modules/vtta-core/1.2.0/module.json')).headers.get('etag')).toBe(
      manifest.headers.get('etag')
    )
    expect(await packagedFor(d.spec.repositoryId, d.spec.releaseId)).toHaveLength(1)
  })
})

describe('bad input: refused with a clear reason, registry unchanged', () => {
  async function refused(
    d: Delivery | { headers: Record<string, string>; body: string },
    code: RejectionCode,
    reason: RegExp
  ) {
    const delivery = 'deliveryId' in d ? d.deliveryId : d.headers['X-GitHub-Delivery']
    const before = await registrySnapshot()
    await p.publish(d)
    await poll(async () => (await p.rejected()).find((e) => e.delivery === delivery)?.code, 15_000).toBe(code)
    const event = (await p.rejected()).find((e) => e.delivery === delivery)!
    expect(event.reason).toMatch(reason)
    expect(await registrySnapshot()).toEqual(before)
    return event
  }

  it('a payload missing `release` (and it is dead-lettered)', async () => {
    const d = await p.gh.delivery('item-piles', { version: '9.0.0', mutate: (x) => void delete x.release })
    await refused(d, 'payload_invalid', /release: Invalid input: expected object, received undefined/)
    const info = await p.jsm.streams.info(deadLetterStream.name)
    const dead = (await p.jsm.streams.getMessage(deadLetterStream.name, { seq: info.state.last_seq }))!
    expect(dead.subject).toBe('deadletter.releases')
    expect(dead.header.get(deadLetterHeaders.reason)).toMatch(/^payload_invalid/)
    expect(dead.string()).toBe(d.body)
  })

  it('a body that is not JSON', async () => {
    const d = await p.gh.delivery('item-piles', { version: '9.0.1' })
    await refused(
      { headers: d.headers, body: '{"action":"published", this is not json' },
      'payload_invalid',
      /not JSON/
    )
  })

  it('a delivery without GitHub-Event and with an empty GitHub-Delivery: a release, named by its message id', async () => {
    // nats.js reads an absent header as '': both must fall back (to `release`, to the Nats-Msg-Id).
    const body = Buffer.from('{"action":"published", not JSON, no headers}')
    const msgID = await deliveryMsgId(body)
    const headers = natsHeaders()
    headers.set(githubHeaders.delivery, '')
    await p.js.publish(githubDeliverySubject('published'), body, { msgID, headers })
    await poll(async () => (await p.rejected()).find((e) => e.delivery === msgID)?.code).toBe(
      'payload_invalid'
    )
  })

  it('assets on a host outside the allowlist (never contacted)', async () => {
    const d = await p.gh.delivery('item-piles', { version: '9.1.0', assetBaseUrl: 'http://127.0.0.2:9' })
    const event = await refused(
      d,
      'asset_host_not_allowed',
      /served from 127\.0\.0\.2:9, which is not an allowed release asset host/
    )
    expect(event).toMatchObject({ repository: 'fantasycalendar/FoundryVTT-ItemPiles', tag: 'v9.1.0' })
    // The author can read why in the registry API.
    const api = await apiJson('/api/modules/item-piles/releases/9.1.0')
    expect(api).toMatchObject({ status: 'rejected', rejection: { code: 'asset_host_not_allowed' } })
  })

  it.each([
    ['bomb', 'zip_bomb', /would inflate \d+ times/],
    ['bomb-lying', 'zip_bomb', /inflates beyond its declared 1000 bytes/],
    ['traversal', 'zip_unsafe_path', /"\.\.\/evil\.js" has a "\.\.\/" path/],
    ['absolute', 'zip_unsafe_path', /"\/etc\/evil\.js" has an absolute path/],
    ['no-manifest', 'zip_manifest_missing', /no module\.json/],
    ['symlink', 'zip_unsafe_entry', /"scripts\/secrets\.js" is a symbolic link/],
    ['case-duplicate', 'zip_unsafe_path', /"module\.json" and "Module\.json" are the same file/],
  ] as const)('a zip: %s', async (zip, code, reason) => {
    const d = await p.gh.delivery('item-piles', { version: `9.2.${zip.length}`, zip })
    await refused(d, code, reason)
  })

  const nested = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth))
  it.each([
    [
      'nested too deep (the release asset)',
      { manifestPatch: { deep: nested(40) } },
      'manifest_too_deep',
      /^module\.json \(release asset\) nests arrays and objects more than 32 levels deep/,
    ],
    [
      'nested too deep (in the zip)',
      { manifestAsset: false, zipManifestPatch: { deep: nested(40) } },
      'manifest_too_deep',
      /^module\.json in module\.zip nests arrays and objects more than 32 levels deep/,
    ],
    [
      'served larger than 256 KiB',
      { manifestPatch: { description: 'x'.repeat(300_000) } },
      'manifest_too_large',
      /would be \d+ bytes pretty-printed, more than the limit of 262144/,
    ],
  ] as const)('a module.json %s', async (what, opts, code, reason) => {
    const d = await p.gh.delivery('item-piles', { version: `9.7.${what.length}`, ...opts })
    await refused(d, code, reason)
  })

  it("a module.json whose id differs from the registry's for that repository", async () => {
    const d = await p.gh.delivery('item-piles', { version: '9.3.0', manifestPatch: { id: 'other-piles' } })
    await refused(
      d,
      'module_id_mismatch',
      /says id "other-piles", but this repository publishes "item-piles"/
    )
    expect((await p.api('/api/modules/other-piles')).status).toBe(404)
  })

  it('a module id another repository owns', async () => {
    const d = await p.gh.delivery('test-module', {
      version: '9.0.0',
      repositoryId: 900_000_777,
      repo: 'impostor',
      manifestPatch: { id: 'item-piles' },
    })
    await refused(d, 'module_id_taken', /belongs to another repository/)
    expect((await apiJson('/api/modules/item-piles/releases/9.0.0')).error?.code).toBe('version_not_found')
  })

  it('a version going backwards', async () => {
    const d = await p.gh.delivery('item-piles', { version: '1.1.5' })
    await refused(d, 'version_not_newer', /1\.1\.5 is not newer than 1\.2\.0/)
  })

  it('a version that is not the tag', async () => {
    const d = await p.gh.delivery('item-piles', { version: '9.4.0', manifestPatch: { version: '9.4.1' } })
    await refused(
      d,
      'version_tag_mismatch',
      /module\.json says version 9\.4\.1, but the release tag "v9\.4\.0" means version 9\.4\.0/
    )
  })

  it("a zip whose module.json disagrees with the release's", async () => {
    const d = await p.gh.delivery('item-piles', { version: '9.5.0', zipManifestPatch: { version: '9.5.9' } })
    await refused(d, 'zip_manifest_mismatch', /says item-piles 9\.5\.9/)
  })

  it('a tag that is not a version', async () => {
    const d = await p.gh.delivery('item-piles', { version: '9.6.0', tag: 'latest' })
    await refused(d, 'version_tag_mismatch', /the tag "latest" is not a version/)
  })

  it('each refusal got one Discord notice', async () => {
    await poll(
      () =>
        p.announcements().filter((c) => firstEmbed(c.body)?.title?.startsWith('Release not published')).length
    ).toBe((await p.rejected()).length)
  })
})

describe('faults', () => {
  it('the release service killed during packaging and started again: packaged exactly once', async () => {
    const d = await p.gh.delivery('ddb-importer', { version: '3.0.0', slowZipMs: 8_000 })
    await p.publish(d)
    const zipDownload = zipObjectPath(d.spec.releaseId)
    await poll(() => p.gh.requests().some((r) => r.path === zipDownload)).toBe(true)
    await killProcess(releases.proc)
    releases = await p.startRelease(0)
    await poll(async () => (await packagedFor(d.spec.repositoryId, d.spec.releaseId)).length, 20_000).toBe(1)
    expect(p.gh.requests().filter((r) => r.path === zipDownload)).toHaveLength(2)
    await poll(() => callsFor('ddb-importer', '3.0.0').length).toBe(1)
    const record = await apiJson('/api/modules/ddb-importer')
    expect(record.versions?.filter((v) => v.version === '3.0.0')).toHaveLength(1)
    // Settle: nothing else arrives late.
    await sleep(1_000)
    expect(await packagedFor(d.spec.repositoryId, d.spec.releaseId)).toHaveLength(1)
    expect(callsFor('ddb-importer', '3.0.0')).toHaveLength(1)
  })

  it('exposes its work in /metrics', async () => {
    const text = await (await fetch(`${releases.internalUrl}/metrics`)).text()
    expect(text).toMatch(
      /releases_deliveries_total\{action="published",outcome="packaged",service="releases",dc="fra"\} \d+/
    )
    expect(text).toMatch(/work_queue_messages_total\{consumer="releases",result="ack"/)
    expect(text).toContain('releases_packaging_duration_seconds_bucket')
    expect(text).toContain('releases_cache_purges_total{result="purged"')
    // Consumer lag: everything delivered so far has been handled.
    expect(text).toMatch(
      /jetstream_consumer_messages\{stream="GITHUB",consumer="releases",kind="pending",service="releases",dc="fra"\} 0/
    )
    expect(text).toMatch(
      /jetstream_consumer_messages\{stream="GITHUB",consumer="releases",kind="ack_pending"/
    )
  })
})
