/**
 * A durable JetStream consumer as the services run it: created (or updated) on the stream for
 * `filterSubject`, worked as a work queue with redelivery backoff,
 * whose messages go to the dead-letter stream after the last attempt (also when the worker died
 * on it: the max-deliveries advisory is watched), with their metrics. `stop()` stops taking work.
 */
import type { NatsConnection } from '@nats-io/nats-core'
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import { Gauge, type Registry } from 'prom-client'
import { createDeadLetterMetrics, DeadLetters } from './dead-letter.ts'
import { ensureConsumer, retryDelaysMs, workQueueConsumerConfig } from './jetstream-setup.ts'
import { createWorkQueueMetrics, startWorkQueue, type WorkQueueOptions } from './work-queue.ts'

export type DurableConsumerOptions = Omit<WorkQueueOptions, 'retryDelaysMs' | 'deadLetters' | 'metrics'> & {
  nc: NatsConnection
  jsm: JetStreamManager
  js: JetStreamClient
  registry: Registry
  /** The subjects of the stream this consumer takes. */
  filterSubject: string
}

export async function startDurableConsumer(o: DurableConsumerOptions): Promise<{ stop(): Promise<void> }> {
  const { nc, jsm, registry, filterSubject, ...queueOptions } = o
  await ensureConsumer(
    jsm,
    o.stream,
    workQueueConsumerConfig({
      durable: o.consumer,
      filterSubject,
      ackWaitMs: o.ackWaitMs,
      maxDeliver: o.maxDeliver,
    }),
    o.log
  )
  const deadLetters = new DeadLetters(o.js, o.consumer, o.log, createDeadLetterMetrics(registry))
  const advisories = deadLetters.watchMaxDeliveries(nc, jsm, o.stream)
  watchLag(jsm, o.stream, o.consumer, registry)
  const queue = await startWorkQueue({
    ...queueOptions,
    retryDelaysMs: retryDelaysMs(o.ackWaitMs, o.maxDeliver),
    deadLetters,
    metrics: createWorkQueueMetrics(registry),
  })
  return {
    async stop() {
      await queue.stop()
      await advisories.drain()
    },
  }
}

/**
 * Consumer lag, read from JetStream when metrics are scraped: messages not yet delivered to the
 * consumer (`kind="pending"`), and delivered but not acknowledged (`kind="ack_pending"`).
 */
function watchLag(jsm: JetStreamManager, stream: string, consumer: string, registry: Registry): void {
  new Gauge({
    name: 'jetstream_consumer_messages',
    help: 'Messages of the stream waiting for this durable consumer (pending: its lag) or for an ack',
    labelNames: ['stream', 'consumer', 'kind'],
    registers: [registry],
    async collect() {
      const info = await jsm.consumers.info(stream, consumer).catch(() => null)
      if (!info) return
      this.set({ stream, consumer, kind: 'pending' }, info.num_pending)
      this.set({ stream, consumer, kind: 'ack_pending' }, info.num_ack_pending)
    },
  })
}
