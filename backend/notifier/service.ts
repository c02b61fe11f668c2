/**
 * The notifier: works the RELEASES stream's `notifier` consumer (shared by the notifier of every
 * datacenter) and announces each packaged release on Discord exactly once (announce.ts). Rejections
 * never go to that public channel: each is logged, and posted (exactly once) to the operator's own
 * webhook when DISCORD_OPERATOR_WEBHOOK_URL is set. Without a webhook it acknowledges and counts.
 * This file is the wiring (config, bucket, webhooks, consumer); each event is handled in
 * handle-release-event.ts.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { nuid } from '@nats-io/nats-core'
import { z } from 'zod'
import {
  deadLetterStreamConfig,
  homePlacement,
  notifierBucket,
  releaseEventsStream,
  releaseEventsStreamConfig,
  streamMaxBytes,
} from '#shared/releases.ts'
import { subjects } from '#shared/subjects.ts'
import { baseConfigSchema, intVar, workQueueConfig } from '../runtime/config.ts'
import { runService } from '../runtime/service.ts'
import { JsonKv } from '../registry/kv-store.ts'
import { startDurableConsumer } from '../runtime/durable-consumer.ts'
import { ensureStream, withStartupRetries } from '../runtime/jetstream-setup.ts'
import { DiscordWebhook } from './discord.ts'
import { handleReleaseEvent, type NotifierDeps } from './handle-release-event.ts'
import { createNotifierMetrics } from './metrics.ts'

const configSchema = baseConfigSchema.extend({
  /** Empty: announcements disabled. A secret (DISCORD_WEBHOOK_URL_FILE works). */
  DISCORD_WEBHOOK_URL: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]).default(''),
  /** The operator's channel for rejection notices; empty: rejections are only logged. A secret too. */
  DISCORD_OPERATOR_WEBHOOK_URL: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]).default(''),
  /** Post a notice when a release is rejected (to DISCORD_OPERATOR_WEBHOOK_URL, when set). */
  ANNOUNCE_REJECTIONS: z.enum(['true', 'false']).default('true'),
  ...workQueueConfig(6),
  // The RELEASES stream's bound, as the release service sets it: both keep the stream up to date.
  RELEASE_EVENTS_MAX_BYTES: intVar(streamMaxBytes.releaseEvents),
  NOTIFIER_CONCURRENCY: intVar(2),
  DISCORD_TIMEOUT_MS: intVar(10_000, 100),
  /**
   * An expired claim of another notifier is left alone this long (announce.ts): longer than the partitions
   * we ride out, so a notifier that sent and was cut off records `sent` before anyone sends again.
   */
  ANNOUNCE_TAKEOVER_MS: intVar(120_000, 0),
  /** A 429 asking to wait longer than this retries the message later instead of holding it. */
  MAX_INLINE_RATE_LIMIT_WAIT_MS: intVar(30_000, 0),
})

await runService({
  name: 'notifier',
  config: configSchema,
  async start({ config, log, nc, metrics, inFlight }) {
    const jsm = await jetstreamManager(nc, { timeout: 5_000, checkAPI: false })
    const js = jetstream(nc, { timeout: 5_000 })
    const replicas = config.JETSTREAM_REPLICAS
    const placed = homePlacement(config.JETSTREAM_HOME_REGION)
    await ensureStream(
      jsm,
      { ...releaseEventsStreamConfig(replicas, config.RELEASE_EVENTS_MAX_BYTES), ...placed },
      log
    )
    await ensureStream(jsm, { ...deadLetterStreamConfig(replicas), ...placed }, log)
    const consumer = 'notifier'
    const kv = new JsonKv(
      await withStartupRetries('notifier bucket', log, async () => {
        await new Kvm(js).create(notifierBucket, {
          ...placed,
          replicas,
          history: 1,
          storage: 'file',
          description: 'vtta.io notifier: one record per announcement (exactly-once claims)',
        })
        return new Kvm(js).open(notifierBucket)
      })
    )
    const m = createNotifierMetrics(metrics.registry)
    const webhook = config.DISCORD_WEBHOOK_URL
      ? new DiscordWebhook(config.DISCORD_WEBHOOK_URL, config.DISCORD_TIMEOUT_MS)
      : null
    const operatorWebhook = config.DISCORD_OPERATOR_WEBHOOK_URL
      ? new DiscordWebhook(config.DISCORD_OPERATOR_WEBHOOK_URL, config.DISCORD_TIMEOUT_MS)
      : null
    m.enabled.set(webhook ? 1 : 0)
    if (!webhook)
      log.warn(
        'DISCORD_WEBHOOK_URL is empty: release announcements are disabled (events are acknowledged and counted)'
      )
    if (!operatorWebhook) log.info('DISCORD_OPERATOR_WEBHOOK_URL is empty: rejected releases are only logged')
    const deps: NotifierDeps = {
      kv,
      webhook,
      operatorWebhook,
      announceRejections: config.ANNOUNCE_REJECTIONS === 'true',
      options: {
        owner: `${config.DC}/${process.pid}/${nuid.next()}`,
        leaseMs: config.DISCORD_TIMEOUT_MS + 5_000,
        takeoverAfterMs: config.ANNOUNCE_TAKEOVER_MS,
        maxInlineWaitMs: config.MAX_INLINE_RATE_LIMIT_WAIT_MS,
        inlineRetries: 3,
      },
      metrics: m,
      log,
    }

    const queue = await startDurableConsumer({
      nc,
      jsm,
      js,
      registry: metrics.registry,
      stream: releaseEventsStream.name,
      consumer,
      filterSubject: subjects.releaseEvents,
      concurrency: config.NOTIFIER_CONCURRENCY,
      ackWaitMs: config.ACK_WAIT_MS,
      maxDeliver: config.MAX_DELIVER,
      log,
      inFlight,
      handle: (item) => handleReleaseEvent(deps, item),
    })
    return {
      async stop() {
        await queue.stop()
      },
    }
  },
})
