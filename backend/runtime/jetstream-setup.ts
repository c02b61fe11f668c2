/**
 * Creating streams and durable consumers idempotently at start-up: three services of each kind
 * may race to create them, and a changed definition is applied as an update.
 */
import { errorMessage } from '#shared/error-message.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream'
import type { Logger } from './logger.ts'

const ms = (n: number) => n * 1_000_000
const STREAM_EXISTS_DIFFERENTLY = 10058

/** Retries while JetStream is still electing its leaders (right after the cluster starts). */
export async function withStartupRetries<T>(what: string, log: Logger, work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (err) {
      if (Date.now() > deadline) throw err
      log.warn({ err: errorMessage(err), attempt }, `${what}: retrying`)
      await sleep(Math.min(2_000, 100 * 2 ** attempt))
    }
  }
}

export async function ensureStream(jsm: JetStreamManager, config: StreamConfig, log: Logger): Promise<void> {
  await withStartupRetries(`stream ${config.name}`, log, async () => {
    try {
      await jsm.streams.add(config)
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === STREAM_EXISTS_DIFFERENTLY)) throw err
      await jsm.streams.update(config.name, config)
      log.info({ stream: config.name }, 'stream definition updated')
    }
  })
}

export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: ConsumerConfig & { durable_name: string },
  log: Logger
): Promise<void> {
  await withStartupRetries(`consumer ${stream}/${config.durable_name}`, log, async () => {
    try {
      await jsm.consumers.add(stream, config)
    } catch (err) {
      if (!(err instanceof JetStreamApiError)) throw err
      // It exists with another definition: update what may be updated.
      await jsm.consumers.info(stream, config.durable_name)
      await jsm.consumers.update(stream, config.durable_name, config)
      log.info({ stream, consumer: config.durable_name }, 'consumer definition updated')
    }
  })
}

/**
 * Redelivery delays by attempt: one ack wait, then doubling, capped at 10 minutes. Also the
 * consumer's `backoff` (a worker that dies mid-work is redelivered on the same schedule).
 */
export function retryDelaysMs(ackWaitMs: number, maxDeliver: number): number[] {
  return Array.from({ length: Math.max(1, maxDeliver - 1) }, (_, i) => Math.min(600_000, ackWaitMs * 2 ** i))
}

/** A durable pull consumer shared by every worker of a service: each message goes to one of them. */
export function workQueueConsumerConfig(o: {
  durable: string
  filterSubject: string
  ackWaitMs: number
  maxDeliver: number
}): ConsumerConfig & { durable_name: string } {
  return {
    durable_name: o.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: o.filterSubject,
    ack_wait: ms(o.ackWaitMs),
    max_deliver: o.maxDeliver,
    backoff: retryDelaysMs(o.ackWaitMs, o.maxDeliver).map(ms),
    max_ack_pending: 1_000,
  } as ConsumerConfig & { durable_name: string }
}
