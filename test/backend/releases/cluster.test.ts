/**
 * Three datacenters: a 3-node NATS cluster with R3 streams and buckets, a release service and a
 * notifier in each, all on the same durable consumers. Exactly-once under concurrency, a burst of
 * deliveries with redeliveries, and the loss of the node leading the GITHUB stream.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNatsCluster, type TestNatsCluster } from '../../support/nats-cluster.ts'
import { startPipeline, type Pipeline } from '../../support/release-pipeline.ts'
import type { Delivery } from '../../../local/stand-ins/github/index.ts'
import { githubStream } from '#shared/releases.ts'
import { firstEmbed } from './documents.ts'

let cluster: TestNatsCluster
let p: Pipeline

beforeAll(async () => {
  cluster = await startNatsCluster('releases-r3')
  p = await startPipeline({ natsUrls: cluster.urls, replicas: 3, releases: 3, notifiers: 3 })
}, 120_000)
afterAll(async () => {
  await p?.stop()
  await cluster?.dispose()
})

const poll = <T>(fn: () => Promise<T> | T, timeout = 30_000) => expect.poll(fn, { timeout, interval: 100 })

/** As the edge does during a leader election: the same message id until JetStream acknowledges. */
async function publishRetrying(d: Delivery): Promise<boolean> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      return (await p.publish(d)).duplicate
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(200)
    }
  }
}

/** A release of its own module (own repository), so releases do not race on one module's version order. */
const prefixes = ['dup', 'load', 'failover']
const ownModule = (i: number, prefix: string) =>
  p.gh.delivery('test-module', {
    version: '1.0.0',
    repositoryId: 910_000_000 + prefixes.indexOf(prefix) * 10_000 + i,
    repo: `${prefix}-${i}`,
    manifestPatch: { id: `${prefix}-module-${i}`, title: `${prefix} module ${i}` },
  })

function expectNoDuplicates(keys: string[]) {
  expect(new Set(keys).size).toBe(keys.length)
}

describe('three release services and three notifiers on R3', () => {
  it('packages and announces each release exactly once under concurrent duplicate events', async () => {
    const deliveries: Delivery[] = []
    for (let i = 0; i < 12; i++) deliveries.push(await ownModule(i, 'dup'))
    // Every release also gets `released` (another delivery id, same release) and a redelivery,
    // all at once, so the three services race on the same releases.
    const burst: Delivery[] = []
    for (const d of deliveries) {
      const released = await p.gh.delivery('test-module', {
        version: '1.0.0',
        repositoryId: d.spec.repositoryId,
        repo: d.spec.repo,
        manifestPatch: d.spec.manifestPatch,
        action: 'released',
      })
      burst.push(d, released, d)
    }
    const acks = await Promise.all(burst.map((d) => p.publish(d)))
    expect(acks.filter((a) => a.duplicate)).toHaveLength(12)
    await poll(async () => (await p.packaged()).filter((e) => e.moduleId.startsWith('dup-')).length).toBe(12)
    await poll(
      () => p.announcements().filter((c) => JSON.stringify(c.body).includes('/modules/dup-module-')).length
    ).toBe(12)
    await sleep(1_000)
    const packaged = (await p.packaged()).filter((e) => e.moduleId.startsWith('dup-'))
    expect(packaged).toHaveLength(12)
    expectNoDuplicates(packaged.map((e) => e.moduleId))
    const calls = p.announcements().filter((c) => JSON.stringify(c.body).includes('/modules/dup-module-'))
    expect(calls).toHaveLength(12)
    // Work really was spread: more than one release service packaged something.
    const workers = await Promise.all(
      p.releases.map(async (s) =>
        (await s.logs()).some((l) => l.msg === 'delivery handled' && l.outcome === 'packaged')
      )
    )
    expect(workers.filter(Boolean).length).toBeGreaterThan(1)
  }, 60_000)

  it('load: 200 deliveries in a burst, a third of them redeliveries — exact counts', async () => {
    const unique: Delivery[] = []
    for (let i = 0; i < 134; i++) unique.push(await ownModule(i, 'load'))
    const burst = [...unique, ...unique.slice(0, 66)]
    // Shuffled, so redeliveries interleave with first deliveries.
    for (let i = burst.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1))
      ;[burst[i], burst[j]] = [burst[j]!, burst[i]!]
    }
    const started = Date.now()
    const acks = await Promise.all(burst.map((d) => p.publish(d)))
    expect(burst).toHaveLength(200)
    expect(acks.filter((a) => a.duplicate)).toHaveLength(66)
    await poll(
      async () => (await p.packaged()).filter((e) => e.moduleId.startsWith('load-')).length,
      60_000
    ).toBe(134)
    await poll(
      () => p.announcements().filter((c) => JSON.stringify(c.body).includes('/modules/load-module-')).length,
      60_000
    ).toBe(134)
    const elapsed = Date.now() - started
    await sleep(1_000)
    const packaged = (await p.packaged()).filter((e) => e.moduleId.startsWith('load-'))
    expect(packaged).toHaveLength(134)
    expectNoDuplicates(packaged.map((e) => e.moduleId))
    const calls = p.announcements().filter((c) => JSON.stringify(c.body).includes('/modules/load-module-'))
    expect(calls).toHaveLength(134)
    expectNoDuplicates(calls.map((c) => firstEmbed(c.body)?.title ?? ''))
    const listed = (await (await p.api('/api/modules')).json()) as {
      modules: Array<{ id: string; latest: { stable: string } }>
    }
    expect(
      listed.modules.filter((m) => m.id.startsWith('load-module-') && m.latest.stable === '1.0.0')
    ).toHaveLength(134)
    console.log(`load: 200 deliveries (134 unique) packaged and announced in ${elapsed} ms`)
  }, 120_000)

  it('the node leading the GITHUB stream dies: releases published meanwhile still end packaged and announced once', async () => {
    const info = await p.jsm.streams.info(githubStream.name)
    const leader = cluster.nodes.find((n) => n.dc === info.cluster?.leader)!
    expect(leader).toBeDefined()
    const deliveries: Delivery[] = []
    for (let i = 0; i < 10; i++) deliveries.push(await ownModule(i, 'failover'))
    await leader.kill()
    try {
      const published = await Promise.all(deliveries.map((d) => publishRetrying(d)))
      expect(published.filter(Boolean)).toHaveLength(0)
      await poll(
        async () => (await p.packaged()).filter((e) => e.moduleId.startsWith('failover-')).length,
        60_000
      ).toBe(10)
      await poll(
        () =>
          p.announcements().filter((c) => JSON.stringify(c.body).includes('/modules/failover-module-'))
            .length,
        60_000
      ).toBe(10)
    } finally {
      await leader.restart()
    }
    await sleep(1_000)
    const packaged = (await p.packaged()).filter((e) => e.moduleId.startsWith('failover-'))
    expect(packaged).toHaveLength(10)
    expect(
      p.announcements().filter((c) => JSON.stringify(c.body).includes('/modules/failover-module-'))
    ).toHaveLength(10)
  }, 120_000)
})
