/**
 * The notifier as a process against a real nats-server and the Discord stand-in: exactly one
 * announcement per release, Discord's rate limits and errors, dead letters, disabled announcements.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { startService, type TestService } from '../../support/backend-service.ts'
import { startDiscordStandIn, type DiscordStandIn } from '../../../local/stand-ins/discord.ts'
import {
  deadLetterHeaders,
  deadLetterStream,
  packagedMsgId,
  releaseEventsStream,
  type PackagedEvent,
  type RejectedEvent,
} from '#shared/releases.ts'
import { natsAuth } from '../../support/nats-credentials.ts'

let nats: TestNatsServer
let discord: DiscordStandIn
let nc: NatsConnection
let js: JetStreamClient
let jsm: JetStreamManager
let notifier: TestService

const env = (over: Record<string, string> = {}) => ({
  DC: 'fra',
  NATS_URL: nats.url,
  JETSTREAM_REPLICAS: '1',
  ACK_WAIT_MS: '1000',
  MAX_DELIVER: '3',
  DISCORD_WEBHOOK_URL: discord.webhookUrl,
  DISCORD_OPERATOR_WEBHOOK_URL: operatorWebhookUrl(),
  ...over,
})

/** The operator's webhook: another webhook id on the same stand-in. */
const OPERATOR_WEBHOOK_ID = '223456789012345678'
const operatorWebhookUrl = () =>
  discord.webhookUrl.replace(/\/webhooks\/\d+\//, `/webhooks/${OPERATOR_WEBHOOK_ID}/`)

beforeAll(async () => {
  nats = await startNatsServer('notifier')
  discord = await startDiscordStandIn()
  notifier = await startService('notifier', env())
  nc = await connect({ servers: nats.url, ...natsAuth() })
  js = jetstream(nc)
  jsm = await jetstreamManager(nc)
})
afterAll(async () => {
  await nc?.close()
  await notifier?.stop()
  await discord?.stop()
  await nats?.dispose()
})

const poll = <T>(fn: () => Promise<T> | T, timeout = 10_000) => expect.poll(fn, { timeout, interval: 50 })
let nextRelease = 1000

function packaged(version: string, over: Partial<PackagedEvent> = {}): PackagedEvent {
  const releaseId = nextRelease++
  return {
    moduleId: 'item-piles',
    title: 'Item Piles',
    version,
    channel: 'stable',
    compatibility: { minimum: '13', verified: '14', maximum: null },
    notes: `Notes for ${version}`,
    releaseUrl: `https://github.com/fantasycalendar/FoundryVTT-ItemPiles/releases/tag/v${version}`,
    manifestUrl: 'https://vtta.io/modules/item-piles/module.json',
    downloadUrl: `https://vtta.io/modules/item-piles/${version}/module.zip`,
    repositoryId: 900_000_003,
    repository: 'fantasycalendar/FoundryVTT-ItemPiles',
    releaseId,
    tag: `v${version}`,
    author: 'Haxxer',
    packagedAt: new Date().toISOString(),
    ...over,
  }
}

const publish = (e: PackagedEvent, msgID = packagedMsgId(e)) =>
  js.publish(releaseEventsStream.packaged, JSON.stringify(e), { msgID })

/** The first embed of a message sent to the stand-in, if it has one. */
const firstEmbed = (body: unknown) =>
  z
    .object({
      embeds: z.array(
        z.object({
          title: z.string().optional(),
          fields: z.array(z.object({ name: z.string(), value: z.string() })).optional(),
        })
      ),
    })
    .safeParse(body).data?.embeds[0]

const callsFor = (version: string) =>
  discord
    .calls()
    .filter((c) => firstEmbed(c.body)?.fields?.some((f) => f.name === 'Version' && f.value === version))

async function deadLetters(): Promise<Array<{ reason: string; body: string }>> {
  const info = await jsm.streams.info(deadLetterStream.name)
  const out = []
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(deadLetterStream.name, { seq })
    if (m?.subject === 'deadletter.notifier')
      out.push({ reason: m.header.get(deadLetterHeaders.reason), body: m.string() })
  }
  return out
}

const restartNotifier = async (over: Record<string, string> = {}) => {
  await notifier.stop()
  notifier = await startService('notifier', env(over))
}

describe('notifier', () => {
  it('announces a packaged release exactly once, even when the event arrives again later', async () => {
    const e = packaged('1.0.0')
    await publish(e)
    await poll(() => callsFor('1.0.0').length).toBe(1)
    // Past the stream's duplicate window a replay has a new message id: the KV record stops it.
    await publish(e, 'replayed-after-the-window')
    await poll(async () => (await notifier.logs()).some((l) => l.msg === 'already announced')).toBe(true)
    expect(callsFor('1.0.0')).toHaveLength(1)
    const call = callsFor('1.0.0')[0]!
    expect(call).toMatchObject({ wait: true, contentType: 'application/json', status: 200 })
    expect(call.userAgent).toMatch(/^DiscordBot \(/)
  })

  it('Discord answers 429, then 500, then 200: one announcement, retry_after honoured', async () => {
    discord.respondNext({ status: 429, retryAfter: 0.6 }, 500)
    await publish(packaged('1.1.0'))
    await poll(() => callsFor('1.1.0').filter((c) => c.status === 200).length).toBe(1)
    const calls = callsFor('1.1.0')
    expect(calls.map((c) => c.status)).toEqual([429, 500, 200])
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(600)
    const metrics = await (await fetch(`${notifier.internalUrl}/metrics`)).text()
    expect(metrics).toMatch(/notifier_rate_limited_total\{scope="user"/)
    expect(metrics).toMatch(/notifier_discord_responses_total\{status="429"/)
  })

  it('waits for the bucket when Discord says X-RateLimit-Remaining: 0', async () => {
    discord.respondNext({
      status: 200,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '0.5' },
    })
    await publish(packaged('1.2.0'))
    await poll(() => callsFor('1.2.0').length).toBe(1)
    const answered = Date.now()
    await publish(packaged('1.2.1'))
    await poll(() => callsFor('1.2.1').length).toBe(1)
    // The bucket resets 0.5 s after the first answer; the second call waits for it.
    expect(callsFor('1.2.1')[0]!.at - callsFor('1.2.0')[0]!.at).toBeGreaterThanOrEqual(500)
    expect(callsFor('1.2.1')[0]!.at - answered).toBeGreaterThanOrEqual(300)
  })

  it('posts a rejected release to the operator webhook, never to the public channel', async () => {
    const rejected: RejectedEvent = {
      code: 'zip_bomb',
      reason: 'module.zip: entry "assets/padding.bin" would inflate 1000 times (limit 200)',
      repositoryId: 900_000_003,
      repository: 'fantasycalendar/FoundryVTT-ItemPiles',
      releaseId: 4242,
      tag: 'v9.0.0',
      moduleId: 'item-piles',
      version: '9.0.0',
      releaseUrl: 'https://github.com/fantasycalendar/FoundryVTT-ItemPiles/releases/tag/v9.0.0',
      delivery: 'delivery-4242',
      rejectedAt: new Date().toISOString(),
    }
    await js.publish(releaseEventsStream.rejected, JSON.stringify(rejected), { msgID: 'rejected-4242' })
    const notices = () =>
      discord.calls().filter((c) => firstEmbed(c.body)?.title === 'Release not published: item-piles 9.0.0')
    await poll(() => notices().length).toBe(1)
    expect(notices()[0]!.webhookId).toBe(OPERATOR_WEBHOOK_ID)
    expect(
      discord
        .calls()
        .filter((c) => c.webhookId !== OPERATOR_WEBHOOK_ID && /not published/.test(JSON.stringify(c.body)))
    ).toEqual([])
    expect((await notifier.logs()).some((l) => l.msg === 'release rejected' && l.code === 'zip_bomb')).toBe(
      true
    )
  })

  it('without DISCORD_OPERATOR_WEBHOOK_URL a rejection is only logged', async () => {
    await restartNotifier({ DISCORD_OPERATOR_WEBHOOK_URL: '' })
    const before = discord.calls().length
    const rejected: RejectedEvent = {
      code: 'version_not_newer',
      reason: 'version 0.0.1 is not newer than 3.0.0',
      repositoryId: 900_000_003,
      repository: 'fantasycalendar/FoundryVTT-ItemPiles',
      releaseId: 4343,
      tag: 'v0.0.1',
      moduleId: 'item-piles',
      version: '0.0.1',
      releaseUrl: 'https://github.com/fantasycalendar/FoundryVTT-ItemPiles/releases/tag/v0.0.1',
      delivery: 'delivery-4343',
      rejectedAt: new Date().toISOString(),
    }
    await js.publish(releaseEventsStream.rejected, JSON.stringify(rejected), { msgID: 'rejected-4343' })
    await poll(async () =>
      (await notifier.logs()).some((l) => l.msg === 'release rejected' && l.releaseId === 4343)
    ).toBe(true)
    await poll(
      async () =>
        (await (await fetch(`${notifier.internalUrl}/metrics`)).text()).match(
          /notifier_announcements_total\{kind="rejected",outcome="disabled"[^}]*\} (\d+)/
        )?.[1]
    ).toBe('1')
    expect(discord.calls().length).toBe(before)
    await restartNotifier()
  })

  it('keeps retrying 5xx with backoff, then dead-letters the announcement', async () => {
    discord.respondNext(...Array.from({ length: 12 }, () => 500))
    const e = packaged('1.3.0')
    await publish(e)
    await poll(
      async () => (await deadLetters()).filter((d) => d.body.includes('"1.3.0"')).length,
      20_000
    ).toBe(1)
    const [dead] = (await deadLetters()).filter((d) => d.body.includes('"1.3.0"'))
    expect(dead!.reason).toMatch(/gave up after 3 deliveries; last error: Discord failed 4 times/)
    expect(callsFor('1.3.0').map((c) => c.status)).toEqual(Array.from({ length: 12 }, () => 500))
    const gaps = callsFor('1.3.0')
      .slice(1, 4)
      .map((c, i) => c.at - callsFor('1.3.0')[i]!.at)
    expect(gaps[0]).toBeGreaterThanOrEqual(250)
    expect(gaps[1]).toBeGreaterThanOrEqual(500)
    expect(gaps[2]).toBeGreaterThanOrEqual(1000)
  })

  it.each([401, 404])(
    'Discord answers %i: dead-lettered at once, and the webhook is not called again',
    async (status) => {
      await restartNotifier()
      discord.respondNext(status)
      const a = packaged(`2.${status}.0`)
      const b = packaged(`2.${status}.1`)
      await publish(a)
      await poll(
        async () => (await deadLetters()).filter((d) => d.body.includes(`"${a.version}"`)).length
      ).toBe(1)
      const reason = (await deadLetters()).find((d) => d.body.includes(`"${a.version}"`))!.reason
      expect(reason).toMatch(
        status === 401
          ? /Discord answered 401: Invalid Webhook Token \(code 50027\)/
          : /Discord answered 404: Unknown Webhook \(code 10015\)/
      )
      await publish(b)
      await poll(
        async () => (await deadLetters()).filter((d) => d.body.includes(`"${b.version}"`)).length
      ).toBe(1)
      expect((await deadLetters()).find((d) => d.body.includes(`"${b.version}"`))!.reason).toMatch(
        /webhook disabled/
      )
      // One call in all: the first; nothing retried, nothing called for the second.
      await sleep(1_500)
      expect(callsFor(a.version)).toHaveLength(1)
      expect(callsFor(b.version)).toHaveLength(0)
      expect(await (await fetch(`${notifier.internalUrl}/metrics`)).text()).toMatch(
        /dead_letters_total\{consumer="notifier",path="worker"[^}]*\} 2/
      )
    }
  )

  it('without DISCORD_WEBHOOK_URL: acknowledges, counts, and says so once', async () => {
    await restartNotifier({ DISCORD_WEBHOOK_URL: '' })
    const before = discord.calls().length
    await publish(packaged('3.0.0'))
    await publish(packaged('3.0.1'))
    await poll(
      async () =>
        (await (await fetch(`${notifier.internalUrl}/metrics`)).text()).match(
          /notifier_announcements_total\{kind="packaged",outcome="disabled"[^}]*\} (\d+)/
        )?.[1]
    ).toBe('2')
    expect(discord.calls().length).toBe(before)
    expect(
      (await notifier.logs()).filter((l) => String(l.msg).includes('announcements are disabled'))
    ).toHaveLength(1)
    expect(await (await fetch(`${notifier.internalUrl}/metrics`)).text()).toMatch(
      /notifier_announcements_enabled\{[^}]*\} 0/
    )
    const consumer = await jsm.consumers.info(releaseEventsStream.name, 'notifier')
    expect(consumer.num_ack_pending + consumer.num_pending).toBe(0)
  })
})
