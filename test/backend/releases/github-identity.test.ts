/**
 * Issue 11 (review C2, M2, M4, M1 c/d): who a release belongs to is GitHub's answer, never the
 * delivery's. Each attack runs against a real release service, notifier and web service, the
 * GitHub stand-in speaking the App flow, and a real nats-server; each would have succeeded before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kvm } from '@nats-io/kv'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { startPipeline, type Pipeline } from '../../support/release-pipeline.ts'
import { installationIdFor, type Delivery, type FixtureName } from '../../../local/stand-ins/github/index.ts'
import { GitHubApp } from '../../../backend/releases/github-api.ts'
import { transferModule } from '../../../local/registry-commands.ts'
import { deadLetterStream } from '#shared/releases.ts'
import { apiDocument, forge, jsonObject } from './documents.ts'

let nats: TestNatsServer
let p: Pipeline

beforeAll(async () => {
  nats = await startNatsServer('github-identity')
  p = await startPipeline({
    natsUrls: [nats.url],
    replicas: 1,
    releasesEnv: {
      // Short backoffs: a rate-limited answer retried on the backoff alone would dead-letter in ~3 s.
      ACK_WAIT_MS: '1000',
      MAX_DELIVER: '3',
      REPOSITORY_QUOTA_VERSIONS: '2',
    },
  })
})
afterAll(async () => {
  await p?.stop()
  await nats?.dispose()
})

const poll = <T>(fn: () => Promise<T> | T, timeout = 15_000) => expect.poll(fn, { timeout, interval: 50 })
const apiJson = async (path: string) => apiDocument(await p.api(path))
const releaseLogs = () => p.releases[0]!.logs()

/** Waits until the release service has handled this delivery, and returns its outcome. */
async function handled(d: Delivery | { deliveryId: string }): Promise<string> {
  const find = async () =>
    (await releaseLogs()).find((l) => l.msg === 'delivery handled' && l.delivery === d.deliveryId)
  await poll(async () => (await find()) !== undefined).toBe(true)
  return (await find())!.outcome as string
}

/** Nothing about this release left the service: no `packaged`, no `rejected`, no Discord call naming it. */
async function nothingAnnounced(releaseId: number, marker: string) {
  expect((await p.packaged()).filter((e) => e.releaseId === releaseId)).toEqual([])
  expect((await p.rejected()).filter((e) => e.releaseId === releaseId)).toEqual([])
  expect(p.discord.calls().filter((c) => JSON.stringify(c.body).includes(marker))).toEqual([])
}

async function released(fixture: FixtureName, opts: Parameters<Pipeline['gh']['delivery']>[1]) {
  const d = await p.gh.delivery(fixture, opts)
  await p.publish(d)
  expect(await handled(d)).toBe('packaged')
  return d
}

const itemPiles = { repositoryId: 900_000_003, name: 'fantasycalendar/FoundryVTT-ItemPiles' }

describe('identity comes from GitHub, never from the delivery', () => {
  it('item-piles publishes from its own repository', async () => {
    await released('item-piles', { version: '1.0.0' })
  })

  /** The issue's forged delivery: item-piles' id, another repository's name and its 99.0.0 release. */
  const forged = async (installationId?: number) => {
    const d = await p.gh.delivery('item-piles', {
      owner: 'evil',
      repo: 'evil-repo',
      repositoryId: 900_000_666,
      version: '99.0.0',
      installationId,
      mutate: forge((x) => void (x.repository.id = itemPiles.repositoryId)),
    })
    // Even enrolled, the attacker's own repository changes nothing of item-piles.
    await p.publish(d)
    return d
  }

  it.each([
    ["the attacker's own installation", undefined, 'repository_not_found'],
    ["item-piles' installation", installationIdFor('fantasycalendar'), 'release_not_found'],
  ])('the forged delivery (%s) is refused and nothing is announced', async (_, installationId, code) => {
    const d = await forged(installationId)
    expect(await handled(d)).toBe('refused')
    expect((await releaseLogs()).find((l) => l.delivery === d.deliveryId && l.code)).toMatchObject({
      code,
      claimedRepository: 'evil/evil-repo',
    })
    const module = await apiJson('/api/modules/item-piles')
    expect(module).toMatchObject({ repository: itemPiles.name, latest: { stable: '1.0.0' } })
    await nothingAnnounced(d.spec.releaseId, '99.0.0')
  })

  it("a payload lying about the repository's name, tag and notes does not matter", async () => {
    const d = await p.gh.delivery('item-piles', {
      version: '1.1.0',
      notes: 'the notes GitHub serves',
      mutate: forge((x) => {
        x.repository.full_name = 'evil/evil-repo'
        x.release.tag_name = 'v77.0.0'
        x.release.body = 'forged notes'
      }),
    })
    await p.publish(d)
    expect(await handled(d)).toBe('packaged')
    const [event] = (await p.packaged()).filter((e) => e.releaseId === d.spec.releaseId)
    expect(event).toMatchObject({ repository: itemPiles.name, version: '1.1.0', tag: 'v1.1.0' })
    expect(event!.notes).toBe('the notes GitHub serves')
    expect(await apiJson('/api/modules/item-piles')).toMatchObject({ repository: itemPiles.name })
  })

  it('a delivery for an installation that does not cover the repository is refused', async () => {
    const d = await p.gh.delivery('item-piles', {
      version: '1.2.0',
      installationId: installationIdFor('evil'),
    })
    await p.publish(d)
    expect(await handled(d)).toBe('refused')
    expect((await releaseLogs()).find((l) => l.delivery === d.deliveryId && l.code)).toMatchObject({
      code: 'repository_not_found',
    })
    await nothingAnnounced(d.spec.releaseId, '1.2.0')
  })

  it('the service reads GitHub only with installation tokens, by repository and release id', () => {
    const calls = p.gh
      .requests()
      .filter((r) => !r.path.startsWith('/_') && r.path !== '/app/installations/1/access_tokens')
    const api = calls.filter((r) => r.path.startsWith('/repositories/'))
    expect(api.length).toBeGreaterThan(0)
    expect(api.every((r) => r.auth.startsWith('installation:'))).toBe(true)
    expect(calls.filter((r) => r.path.startsWith('/app/')).every((r) => r.auth === 'app')).toBe(true)
    // Never the payload's name: evil/evil-repo was never asked for.
    expect(calls.some((r) => r.path.includes('evil'))).toBe(false)
  })

  it('a repository that is not enrolled is refused, and nothing is stored or announced', async () => {
    const d = await p.gh.delivery('test-module', {
      owner: 'newcomer',
      repo: 'fresh-module',
      repositoryId: 900_000_500,
      version: '1.0.0',
      manifestPatch: { id: 'fresh-module', title: 'Fresh' },
    })
    await p.publish(d, { enroll: false })
    expect(await handled(d)).toBe('refused')
    expect((await releaseLogs()).find((l) => l.delivery === d.deliveryId && l.code)).toMatchObject({
      code: 'repository_not_enrolled',
    })
    expect((await p.api('/api/modules/fresh-module')).status).toBe(404)
    await nothingAnnounced(d.spec.releaseId, 'Fresh')
  })
})

describe('a module moves only by the operator', () => {
  const alice = { owner: 'alice', repo: 'moving', repositoryId: 900_000_601 }
  const bob = { owner: 'bob', repo: 'moving', repositoryId: 900_000_602 }
  const moving = { manifestPatch: { id: 'moving-module', title: 'Moving' } }

  it('transfer moves the module to another repository, audited', async () => {
    await released('test-module', { ...alice, ...moving, version: '1.0.0' })
    // Before: bob's repository cannot publish alice's module.
    const early = await p.gh.delivery('test-module', { ...bob, ...moving, version: '2.0.0' })
    await p.publish(early)
    expect(await handled(early)).toBe('rejected')
    expect((await p.rejected()).find((e) => e.releaseId === early.spec.releaseId)?.code).toBe(
      'module_id_taken'
    )

    const github = new GitHubApp({
      apiUrl: p.gh.url,
      appId: p.gh.app.id,
      privateKey: p.gh.app.privateKey,
      timeoutMs: 5_000,
    })
    const moved = await transferModule(
      { nc: p.nc, github, by: 'operator-test' },
      'moving-module',
      'bob/moving'
    )
    expect(moved).toEqual({
      from: { id: alice.repositoryId, name: 'alice/moving' },
      to: { id: bob.repositoryId, name: 'bob/moving' },
    })
    const kv = await new Kvm(p.nc).open('registry')
    const audits = []
    for await (const key of await kv.keys('audit.>')) audits.push((await kv.get(key))?.json<unknown>())
    expect(audits).toContainEqual(
      expect.objectContaining({
        action: 'transfer',
        by: 'operator-test',
        moduleId: 'moving-module',
        ...moved,
      })
    )
    expect(await apiJson('/api/modules/moving-module')).toMatchObject({ repository: 'bob/moving' })

    // After: bob publishes it, alice no longer can.
    await released('test-module', { ...bob, ...moving, version: '3.0.0' })
    const late = await p.gh.delivery('test-module', { ...alice, ...moving, version: '4.0.0' })
    await p.publish(late)
    expect(await handled(late)).toBe('rejected')
    expect((await apiJson('/api/modules/moving-module')).latest?.stable).toBe('3.0.0')
  })
})

describe('replays and stale releases change nothing', () => {
  it('a refused release replayed under another delivery is announced once', async () => {
    const d = await p.gh.delivery('lib-wrapper', { version: '1.0.0', tag: 'latest' })
    await p.publish(d)
    expect(await handled(d)).toBe('rejected')
    const replay = { ...d, deliveryId: 'replayed-' + d.deliveryId }
    // Other bytes (beyond the stream's duplicate window, a replay is a new message).
    await p.publish({
      headers: { ...d.headers, 'X-GitHub-Delivery': replay.deliveryId },
      body: JSON.stringify({ ...jsonObject(d.body), sender: { login: 'replayer' } }),
    })
    expect(await handled(replay)).toBe('rejected')
    expect((await p.rejected()).filter((e) => e.releaseId === d.spec.releaseId)).toHaveLength(1)
  })

  it('an older release delivered after a newer one changes nothing and announces nothing', async () => {
    await released('vtta-core', { version: '2.0.0' })
    const before = await apiJson('/api/modules/vtta-core')
    const old = await p.gh.delivery('vtta-core', {
      version: '1.5.0',
      publishedAt: new Date(Date.now() - 86_400_000).toISOString(),
    })
    await p.publish(old)
    expect(await handled(old)).toBe('stale')
    expect(await apiJson('/api/modules/vtta-core')).toEqual(before)
    await nothingAnnounced(old.spec.releaseId, '1.5.0')
  })

  it('an `edited` with forged notes takes the notes GitHub serves', async () => {
    const d = await released('ddb-importer', { version: '1.0.0', notes: 'first notes' })
    // The author edits the release on GitHub …
    p.gh.addRelease({ ...d.spec, notes: 'edited on GitHub' })
    // … and a delivery claims other notes.
    const edited = await p.gh.delivery('ddb-importer', {
      version: '1.0.0',
      notes: 'edited on GitHub',
      action: 'edited',
      mutate: forge((x) => void (x.release.body = 'forged [click me](https://evil.example)')),
    })
    await p.publish(edited)
    expect(await handled(edited)).toBe('notes_updated')
    expect(await apiJson('/api/modules/ddb-importer/releases/1.0.0')).toMatchObject({
      notes: 'edited on GitHub',
    })
  })
})

describe('bounded', () => {
  it('a repository over its version quota is refused with quota_exceeded', async () => {
    const quota = { owner: 'prolific', repo: 'quota', repositoryId: 900_000_700 }
    const patch = { manifestPatch: { id: 'quota-module', title: 'Quota' } }
    await released('test-module', { ...quota, ...patch, version: '1.0.0' })
    await released('test-module', { ...quota, ...patch, version: '1.1.0' })
    const third = await p.gh.delivery('test-module', { ...quota, ...patch, version: '1.2.0' })
    await p.publish(third)
    expect(await handled(third)).toBe('rejected')
    const event = (await p.rejected()).find((e) => e.releaseId === third.spec.releaseId)
    expect(event).toMatchObject({ code: 'quota_exceeded', moduleId: 'quota-module' })
    expect((await apiJson('/api/modules/quota-module')).latest?.stable).toBe('1.1.0')
  })

  it('a rate-limited GitHub answer delays the release until the reset, it is not dead-lettered', async () => {
    const deadLetters = async () => (await p.jsm.streams.info(deadLetterStream.name)).state.messages
    const deadBefore = await deadLetters()
    p.gh.rateLimit({ seconds: 5, status: 403 })
    const d = await p.gh.delivery('lib-wrapper', { version: '2.0.0' })
    const started = Date.now()
    await p.publish(d)
    await poll(async () => (await p.packaged()).some((e) => e.releaseId === d.spec.releaseId), 20_000).toBe(
      true
    )
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_000)
    expect(await deadLetters()).toBe(deadBefore)
    const retry = (await releaseLogs()).find(
      (l) => l.msg === 'will retry' && /rate limit/.test(String(l.err))
    )
    expect(retry?.delayMs).toBeGreaterThanOrEqual(3_000)
  })
})
