/**
 * A durable pull consumer worked by every instance of a service (three datacenters, one consumer):
 * each message goes to one worker at a time, is kept alive while it is worked on, and ends in one
 * of three ways —
 *   handler returns         → ack
 *   PermanentFailure        → dead letter, then term (never retried)
 *   anything else           → nak with the retry delay of this attempt; on the last allowed
 *                             delivery (max_deliver) → dead letter, then term
 * A dead letter that cannot be written leaves the message to be redelivered rather than lost.
 */
import { errorMessage } from '#shared/error-message.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Logger } from './logger.ts'
import type { InFlight } from './in-flight.ts'
import type { DeadLetters } from './dead-letter.ts'

/** The message can never succeed: dead-letter it now. */
export class PermanentFailure extends Error {
  override name = 'PermanentFailure'
}

/** Try again after `delayMs` (counts as a delivery). */
export class RetryLater extends Error {
  override name = 'RetryLater'
  readonly delayMs: number

  constructor(message: string, delayMs: number) {
    super(message)
    this.delayMs = delayMs
  }
}

export interface WorkItem {
  msg: JsMsg
  /** Resets the message's ack timer; called automatically every third of the ack wait too. */
  keepAlive(): void
  /** 1 on first delivery. */
  delivery: number
  lastDelivery: boolean
}

export function createWorkQueueMetrics(registry: Registry) {
  return {
    results: new Counter({
      name: 'work_queue_messages_total',
      help: 'Messages worked, by consumer and result (ack, retry, dead_letter)',
      labelNames: ['consumer', 'result'] as const,
      registers: [registry],
    }),
    busy: new Gauge({
      name: 'work_queue_in_progress',
      help: 'Messages being worked on now',
      labelNames: ['consumer'] as const,
      registers: [registry],
    }),
  }
}
export type WorkQueueMetrics = ReturnType<typeof createWorkQueueMetrics>

export interface WorkQueueOptions {
  js: JetStreamClient
  stream: string
  consumer: string
  concurrency: number
  ackWaitMs: number
  maxDeliver: number
  retryDelaysMs: readonly number[]
  deadLetters: DeadLetters
  log: Logger
  inFlight: InFlight
  metrics: WorkQueueMetrics
  handle(item: WorkItem): Promise<void>
}

const PULL_EXPIRES_MS = 2_000

export async function startWorkQueue(o: WorkQueueOptions): Promise<{ stop(): Promise<void> }> {
  const consumer = await o.js.consumers.get(o.stream, o.consumer)
  let stopped = false
  const labels = { consumer: o.consumer }

  const work = async (msg: JsMsg) => {
    const delivery = msg.info.deliveryCount
    // Each call publishes to the server; handlers call keepAlive as they progress (per chunk of a
    // download, per zip entry), so it is spaced out here. The timer keeps the message alive anyway.
    const keepAliveEveryMs = Math.max(250, Math.floor(o.ackWaitMs / 3))
    let lastKeepAlive = 0
    const keepAlive = () => {
      const now = Date.now()
      if (now - lastKeepAlive < keepAliveEveryMs / 3) return
      lastKeepAlive = now
      msg.working()
    }
    const item: WorkItem = { msg, keepAlive, delivery, lastDelivery: delivery >= o.maxDeliver }
    const timer = setInterval(keepAlive, keepAliveEveryMs)
    o.metrics.busy.inc(labels)
    try {
      await o.handle(item)
      msg.ack()
      o.metrics.results.inc({ ...labels, result: 'ack' })
    } catch (err) {
      const reason = err instanceof Error && err.message ? err.message : String(err)
      if (err instanceof PermanentFailure || item.lastDelivery) {
        const why =
          err instanceof PermanentFailure
            ? reason
            : `gave up after ${delivery} deliveries; last error: ${reason}`
        try {
          await o.deadLetters.send({
            data: msg.data,
            headers: msg.headers,
            subject: msg.subject,
            stream: msg.info.stream,
            sequence: msg.seq,
            deliveries: delivery,
            reason: why,
          })
          msg.term()
          o.metrics.results.inc({ ...labels, result: 'dead_letter' })
        } catch (dlqErr) {
          o.log.error(
            { err: errorMessage(dlqErr), seq: msg.seq },
            'dead letter failed; leaving the message for redelivery'
          )
          msg.nak(o.ackWaitMs)
          o.metrics.results.inc({ ...labels, result: 'retry' })
        }
        return
      }
      const delayMs =
        err instanceof RetryLater
          ? err.delayMs
          : (o.retryDelaysMs[Math.min(delivery, o.retryDelaysMs.length) - 1] ?? o.ackWaitMs)
      o.log.warn({ seq: msg.seq, subject: msg.subject, delivery, delayMs, err: reason }, 'will retry')
      msg.nak(delayMs)
      o.metrics.results.inc({ ...labels, result: 'retry' })
    } finally {
      clearInterval(timer)
      o.metrics.busy.dec(labels)
    }
  }

  const loop = async () => {
    while (!stopped) {
      let msg: JsMsg | null
      try {
        msg = await consumer.next({ expires: PULL_EXPIRES_MS })
      } catch (err) {
        if (stopped) break
        o.log.warn({ err: errorMessage(err), consumer: o.consumer }, 'pull failed; retrying')
        await sleep(500)
        continue
      }
      if (!msg) continue
      if (stopped) {
        // Taken while stopping: hand it straight to another worker.
        msg.nak()
        break
      }
      await o.inFlight.track(() => work(msg))
    }
  }
  const loops = Array.from({ length: o.concurrency }, () =>
    loop().catch((err: unknown) => o.log.error({ err }, 'work loop ended unexpectedly'))
  )

  return {
    async stop() {
      stopped = true
      await Promise.all(loops)
    },
  }
}
