/**
 * announceOnce against a real nats-server KV bucket and the Discord stand-in: a notifier that was answered
 * 2xx and then lost its bucket (its server gone, as in a partition or a full disk) records `sent` once the
 * bucket is back, and no other notifier sends the announcement again meanwhile.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import type { JsMsg } from '@nats-io/jetstream'
import { jetstream } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { Registry } from 'prom-client'
import {
  announceOnce,
  announcementRecordSchema,
  type AnnounceOptions,
} from '../../../backend/notifier/announce.ts'
import { DiscordWebhook } from '../../../backend/notifier/discord.ts'
import { createNotifierMetrics } from '../../../backend/notifier/metrics.ts'
import { JsonKv } from '../../../backend/registry/kv-store.ts'
import { RetryLater, type WorkItem } from '../../../backend/runtime/work-queue.ts'
import { startDiscordStandIn, type DiscordStandIn } from '../../../local/stand-ins/discord.ts'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { natsAuth } from '../../support/nats-credentials.ts'

let nats: TestNatsServer
let discord: DiscordStandIn
let nc: NatsConnection
let kv: JsonKv
const metrics = createNotifierMetrics(new Registry())

/** A work item outside a consumer: counts how often it was kept alive. */
const workItem = () => {
  const item = { keepAlives: 0, delivery: 1, lastDelivery: false, msg: {} as JsMsg, keepAlive: () => {} }
  item.keepAlive = () => void item.keepAlives++
  return item satisfies WorkItem
}

const options = (owner: string, o: Partial<AnnounceOptions> = {}): AnnounceOptions => ({
  owner,
  leaseMs: 1_000,
  takeoverAfterMs: 30_000,
  maxInlineWaitMs: 1_000,
  inlineRetries: 1,
  ...o,
})

beforeAll(async () => {
  nats = await startNatsServer('announce')
  discord = await startDiscordStandIn()
  nc = await connect({
    servers: nats.url,
    ...natsAuth(),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  })
  const js = jetstream(nc, { timeout: 2_000 })
  await new Kvm(js).create('announce-test', { history: 1, storage: 'file' })
  kv = new JsonKv(await new Kvm(js).open('announce-test'))
}, 60_000)

afterAll(async () => {
  await nc?.close()
  await discord?.stop()
  await nats?.dispose()
})

describe('announceOnce', () => {
  it('records sent once its bucket is back after Discord’s 2xx; meanwhile nobody sends it again', async () => {
    discord.reset()
    const key = 'after-2xx-bucket-lost'
    // Discord takes 1.5 s to answer; the server goes away during the call and stays away for 6 s, longer
    // than a KV write's timeout (2 s) and than the claim's lease (1 s).
    discord.respondNext({ status: 200, delayMs: 1_500, body: { id: '1300000000000000001' } })
    const item = workItem()
    const first = announceOnce(kv, key, { content: 'A 1.0.0' }, webhook(), item, options('A'), metrics)
    while (discord.calls().length === 0) await sleep(20)
    await nats.stop()
    await sleep(6_000)
    await nats.restart()
    // JetStream answers again (a restarted server takes a moment to recover its streams).
    for (;;) {
      const answered = await kv.get('anything', announcementRecordSchema).then(
        () => true,
        () => false
      )
      if (answered) break
      await sleep(100)
    }

    // Another notifier comes for the same announcement: the claim's lease has expired, but its owner may
    // have sent: it must not send.
    const second = await announceOnce(
      kv,
      key,
      { content: 'A 1.0.0' },
      webhook(),
      workItem(),
      options('B'),
      metrics
    ).catch((error: unknown) => error)
    expect(await first).toBe('sent')
    expect(second === 'duplicate' || second instanceof RetryLater, String(second)).toBe(true)
    expect(item.keepAlives).toBeGreaterThan(0)
    expect(discord.calls()).toHaveLength(1)
    const record = await kv.get(key, announcementRecordSchema)
    expect(record?.value).toMatchObject({ state: 'sent', owner: 'A', messageId: '1300000000000000001' })
  }, 60_000)

  it('leaves a claim whose owner went silent alone for takeoverAfterMs, then sends it once', async () => {
    discord.reset()
    const key = 'owner-silent'
    await kv.put(key, {
      state: 'sending',
      owner: 'gone',
      leaseUntil: Date.now() - 1,
      messageId: null,
      attempts: 1,
      updatedAt: new Date().toISOString(),
    })
    const o = options('C', { leaseMs: 300, takeoverAfterMs: 2_000 })
    // Within the takeover time: nothing is sent, the message is retried later.
    const early = await announceOnce(kv, key, { content: 'C' }, webhook(), workItem(), o, metrics).catch(
      (error: unknown) => error
    )
    expect(early).toBeInstanceOf(RetryLater)
    expect(discord.calls()).toHaveLength(0)
    await sleep(2_000)
    expect(await announceOnce(kv, key, { content: 'C' }, webhook(), workItem(), o, metrics)).toBe('sent')
    expect(discord.calls()).toHaveLength(1)
  }, 30_000)

  it('sends a new announcement once however many notifiers race for it, and a sent one never again', async () => {
    discord.reset()
    const key = 'raced'
    const o = (owner: string) => options(owner, { leaseMs: 5_000 })
    // Every notifier's first look assumes no record: one create wins, the others read what it wrote.
    const raced = await Promise.all(
      ['D', 'E', 'F'].map((owner) =>
        announceOnce(kv, key, { content: 'D' }, webhook(), workItem(), o(owner), metrics)
      )
    )
    expect(raced.filter((r) => r === 'sent')).toHaveLength(1)
    expect(raced.filter((r) => r === 'duplicate')).toHaveLength(2)
    expect(await announceOnce(kv, key, { content: 'D' }, webhook(), workItem(), o('G'), metrics)).toBe(
      'duplicate'
    )
    expect(discord.calls()).toHaveLength(1)
  }, 30_000)
})

const webhook = () => new DiscordWebhook(discord.webhookUrl, 5_000)
