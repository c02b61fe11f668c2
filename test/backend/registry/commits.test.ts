/**
 * The registry's atomic decisions against a real JetStream KV: concurrent commits of the same
 * version, of different releases, of versions going backwards, deletion, repository binding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { ensureRegistryStorage } from '../../../backend/registry/buckets.ts'
import { RegistryWriter } from '../../../backend/registry/writer.ts'
import { RegistryReader } from '../../../backend/registry/reader.ts'
import type { VersionEntry } from '../../../backend/registry/records.ts'
import { natsAuth } from '../../support/nats-credentials.ts'

let nats: TestNatsServer
let nc: NatsConnection
let writer: RegistryWriter

beforeAll(async () => {
  nats = await startNatsServer('registry')
  nc = await connect({ servers: nats.url, ...natsAuth() })
  writer = new RegistryWriter(await ensureRegistryStorage(nc, 1))
})
afterAll(async () => {
  await nc?.close()
  await nats?.dispose()
})

const entry = (version: string, releaseId: number, over: Partial<VersionEntry> = {}): VersionEntry => ({
  version,
  channel: 'stable',
  status: 'packaged',
  repositoryId: 7,
  releaseId,
  tag: `v${version}`,
  releaseUrl: 'https://github.com/o/r/releases/tag/v' + version,
  manifestUrl: 'https://vtta.io/modules/m/module.json',
  downloadUrl: `https://vtta.io/modules/m/${version}/module.zip`,
  compatibility: { minimum: '12', verified: '13', maximum: null },
  zip: { object: `m/${version}/${releaseId}/module.zip`, sha256: 'x', size: 1 },
  manifestSha256: 'y',
  packagedAt: new Date().toISOString(),
  deletedAt: null,
  ...over,
})
const commit = (moduleId: string, e: VersionEntry, repository = 'o/r') =>
  writer.commitVersion({ moduleId, title: 'M', repository, entry: e })

describe('registry commits', () => {
  it('commits a version once, however many workers race with the same release', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => commit('race', entry('1.0.0', 100))))
    expect(results.filter((r) => r.outcome === 'committed')).toHaveLength(1)
    expect(results.filter((r) => r.outcome === 'already')).toHaveLength(5)
    const record = (await writer.getModule('race'))!.value
    expect(record.versions).toHaveLength(1)
    expect(record.latest).toEqual({ stable: '1.0.0', beta: null })
  })

  it('lets exactly one of several releases claiming the same version win', async () => {
    const results = await Promise.all([101, 102, 103].map((id) => commit('contest', entry('2.0.0', id))))
    expect(results.filter((r) => r.outcome === 'committed')).toHaveLength(1)
    const refused = results.filter((r) => r.outcome === 'rejected')
    expect(refused).toHaveLength(2)
    for (const r of refused) expect(r).toMatchObject({ code: 'version_exists' })
  })

  it('stores exactly the concurrent versions it commits, refusing ones overtaken by a newer one, latest by Foundry ordering', async () => {
    const versions = ['1.0.0', '1.2.0', '1.10.0', '1.9.0']
    const results = await Promise.all(versions.map((v, i) => commit('many', entry(v, 200 + i))))
    // A commit that finds a newer version already stored is refused; none is lost silently.
    const committed = versions.filter((_, i) => results[i]!.outcome === 'committed')
    results.forEach((r, i) => {
      if (r.outcome !== 'committed') expect(r, versions[i]).toMatchObject({ code: 'version_not_newer' })
    })
    const record = (await writer.getModule('many'))!.value
    expect(record.latest.stable).toBe('1.10.0')
    expect(committed).toContain('1.10.0')
    expect(record.versions.map((v) => v.version).sort()).toEqual(committed.sort())
  })

  it('refuses a version going backwards, per channel', async () => {
    expect((await commit('order', entry('2.0.0', 300))).outcome).toBe('committed')
    expect(await commit('order', entry('1.9.9', 301))).toMatchObject({
      outcome: 'rejected',
      code: 'version_not_newer',
    })
    expect(await commit('order', entry('2.0.0-rc.1', 302, { channel: 'beta' }))).toMatchObject({
      outcome: 'committed',
    })
    expect(await commit('order', entry('1.5.0-beta', 303, { channel: 'beta' }))).toMatchObject({
      outcome: 'rejected',
      code: 'version_not_newer',
    })
    expect((await writer.getModule('order'))!.value.latest).toEqual({ stable: '2.0.0', beta: '2.0.0-rc.1' })
  })

  it('promotes a beta release to stable once; a late beta event does not demote it', async () => {
    await commit('promo', entry('3.0.0', 400, { channel: 'beta' }))
    expect((await commit('promo', entry('3.0.0', 400))).outcome).toBe('promoted')
    expect((await commit('promo', entry('3.0.0', 400))).outcome).toBe('already')
    expect((await commit('promo', entry('3.0.0', 400, { channel: 'beta' }))).outcome).toBe('already')
    expect((await writer.getModule('promo'))!.value.latest).toEqual({ stable: '3.0.0', beta: null })
  })

  it('refuses a module id that belongs to another repository', async () => {
    await commit('owned', entry('1.0.0', 500))
    expect(await commit('owned', entry('1.1.0', 501, { repositoryId: 8 }), 'x/y')).toMatchObject({
      outcome: 'rejected',
      code: 'module_id_taken',
    })
  })

  it('deletes a release from the listing and falls back to the previous version', async () => {
    await commit('del', entry('1.0.0', 600))
    await commit('del', entry('1.1.0', 601))
    expect(await writer.markReleaseDeleted('del', 601)).toHaveLength(1)
    expect(await writer.markReleaseDeleted('del', 601)).toHaveLength(0)
    const record = (await writer.getModule('del'))!.value
    expect(record.latest.stable).toBe('1.0.0')
    expect(record.versions.find((v) => v.version === '1.1.0')).toMatchObject({ status: 'deleted' })
    // The same version cannot come back from another release: files at its URL are immutable.
    expect(await commit('del', entry('1.1.0', 602))).toMatchObject({
      outcome: 'rejected',
      code: 'version_exists',
    })
    expect((await commit('del', entry('1.1.0', 601))).outcome).toBe('deleted')
  })

  it('commits from a record the caller read, and from a fresh read when that record has moved on', async () => {
    await commit('seen', entry('1.0.0', 700))
    const seen = await writer.getModule('seen')
    const next = { moduleId: 'seen', title: 'M', repository: 'o/r' }
    expect((await writer.commitVersion({ ...next, entry: entry('1.1.0', 701) }, seen)).outcome).toBe(
      'committed'
    )
    // `seen` is stale now (1.1.0 is in): its compare-and-set is refused and a fresh read decides.
    expect((await writer.commitVersion({ ...next, entry: entry('1.2.0', 702) }, seen)).outcome).toBe(
      'committed'
    )
    // A module believed absent that exists: the create is refused, and the rules see the record.
    expect(await writer.commitVersion({ ...next, entry: entry('1.2.0', 703) }, null)).toMatchObject({
      outcome: 'rejected',
      code: 'version_exists',
    })
    expect((await writer.getModule('seen'))!.value.versions.map((v) => v.version)).toEqual([
      '1.0.0',
      '1.1.0',
      '1.2.0',
    ])
  })

  it('answers anything but a write only from a fresh read, never from the record the caller read', async () => {
    await commit('fresh', entry('1.0.0', 800))
    const before = await writer.getModule('fresh')
    await commit('fresh', entry('1.1.0', 801))
    expect(await writer.markReleaseDeleted('fresh', 801)).toHaveLength(1)
    // The stale record says 1.1.0 of release 801 is there; the registry says it was deleted.
    const staleSays = { ...before!, value: (await writer.getModule('fresh'))!.value }
    staleSays.value = {
      ...staleSays.value,
      versions: staleSays.value.versions.map((v) => ({ ...v, status: 'packaged' as const, deletedAt: null })),
    }
    const result = await writer.commitVersion(
      { moduleId: 'fresh', title: 'M', repository: 'o/r', entry: entry('1.1.0', 801) },
      staleSays
    )
    expect(result.outcome).toBe('deleted')
  })

  it("stores a version's notes once: the first run's stay, whatever later runs bring", async () => {
    const notes = (text: string) => ({ notes: text, releaseId: 900, updatedAt: new Date().toISOString() })
    const stored = async (version: string) => (await writer.getNotes('noted', version))?.notes
    expect(await writer.createNotes('noted', '1.0.0', notes('first'))).toBe(true)
    expect(await stored('1.0.0')).toBe('first')
    expect(await writer.createNotes('noted', '1.0.0', notes('second'))).toBe(false)
    expect(await stored('1.0.0')).toBe('first')
    // An edit replaces them; a later run (a promotion, a retry) keeps the edit.
    await writer.putNotes('noted', '1.0.0', notes('edited'))
    expect(await writer.createNotes('noted', '1.0.0', notes('third'))).toBe(false)
    expect(await stored('1.0.0')).toBe('edited')
    const raced = await Promise.all(
      ['a', 'b', 'c'].map((t) => writer.createNotes('noted', '2.0.0', notes(t)))
    )
    expect(raced.filter(Boolean)).toHaveLength(1)
    expect(await stored('2.0.0')).toBe(['a', 'b', 'c'][raced.indexOf(true)])
  })

  it('binds a repository to one module id, atomically', async () => {
    const results = await Promise.all(['alpha', 'beta', 'gamma'].map((id) => writer.bindRepository(42, id)))
    expect(results.filter((r) => r.ok)).toHaveLength(1)
    const bound = await writer.repositoryModule(42)
    for (const r of results) if (!r.ok) expect(r.boundTo).toBe(bound)
  })

  it('reads back through the web service reader', async () => {
    const reader = new RegistryReader(nc)
    expect((await reader.getModule('race'))?.latest.stable).toBe('1.0.0')
    expect((await reader.listModules()).map((m) => m.id)).toEqual(
      expect.arrayContaining(['race', 'contest', 'del'])
    )
    expect(await reader.getModule('nope')).toBeNull()
  })
})

describe('registry reader before the registry exists', () => {
  it('finds nothing rather than failing', async () => {
    const empty = await startNatsServer('registry-empty')
    const c = await connect({ servers: empty.url, ...natsAuth() })
    try {
      const reader = new RegistryReader(c)
      expect(await reader.getModule('anything')).toBeNull()
      expect(await reader.listModules()).toEqual([])
    } finally {
      await c.close()
      await empty.dispose()
    }
  })
})
