/**
 * Dead letters: a message a consumer gave up on is copied to the DEADLETTER stream
 * (`deadletter.<consumer>`, headers saying why) for an operator to inspect or replay.
 *
 * Two paths lead there. A worker that fails on the last allowed delivery copies the message itself,
 * then terminates it. A worker that dies during the last delivery cannot, so every worker also
 * listens (queue group) for JetStream's MAX_DELIVERIES advisory and copies the message from the
 * stream by its sequence. Both use the message id `<stream>:<sequence>`, so it is stored once.
 */
import { errorMessage } from '#shared/error-message.ts'
import {
  headers as natsHeaders,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core'
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import { z } from 'zod'
import { Counter, type Registry } from 'prom-client'
import { deadLetterHeaders, deadLetterStream } from '#shared/releases.ts'
import type { Logger } from './logger.ts'
import { decodeMessage } from './messages.ts'

export interface DeadLetterInput {
  data: Uint8Array
  headers?: MsgHdrs | undefined
  subject: string
  stream: string
  sequence: number
  deliveries: number
  reason: string
}

const maxDeliveriesAdvisorySchema = z.object({
  stream: z.string(),
  consumer: z.string(),
  stream_seq: z.number().int().positive(),
  deliveries: z.number().int(),
})

export function createDeadLetterMetrics(registry: Registry) {
  return new Counter({
    name: 'dead_letters_total',
    help: 'Messages given up on and copied to the DEADLETTER stream, by consumer and path',
    labelNames: ['consumer', 'path'] as const,
    registers: [registry],
  })
}

export class DeadLetters {
  readonly #js: JetStreamClient
  readonly #consumer: string
  readonly #log: Logger
  readonly #counter: Counter<'consumer' | 'path'>

  constructor(js: JetStreamClient, consumer: string, log: Logger, counter: Counter<'consumer' | 'path'>) {
    this.#js = js
    this.#consumer = consumer
    this.#log = log
    this.#counter = counter
  }

  async send(input: DeadLetterInput, path: 'worker' | 'advisory' = 'worker'): Promise<void> {
    const h = natsHeaders()
    for (const [key, values] of input.headers ?? []) {
      // The original Nats-Msg-Id (a GitHub delivery id) would deduplicate against the wrong thing.
      if (!key.toLowerCase().startsWith('nats-')) for (const v of values) h.append(key, v)
    }
    h.set(deadLetterHeaders.reason, input.reason.replace(/[\r\n]+/g, ' ').slice(0, 1000))
    h.set(deadLetterHeaders.stream, input.stream)
    h.set(deadLetterHeaders.sequence, String(input.sequence))
    h.set(deadLetterHeaders.subject, input.subject)
    h.set(deadLetterHeaders.consumer, this.#consumer)
    h.set(deadLetterHeaders.deliveries, String(input.deliveries))
    const ack = await this.#js.publish(deadLetterStream.subject(this.#consumer), input.data, {
      msgID: `${input.stream}:${input.sequence}`,
      headers: h,
    })
    if (!ack.duplicate) {
      this.#counter.inc({ consumer: this.#consumer, path })
      this.#log.error(
        {
          stream: input.stream,
          seq: input.sequence,
          subject: input.subject,
          deliveries: input.deliveries,
          reason: input.reason,
        },
        'message dead-lettered'
      )
    }
  }

  /** Copies messages whose worker died on their last delivery (see the file comment). */
  watchMaxDeliveries(nc: NatsConnection, jsm: JetStreamManager, stream: string): Subscription {
    return nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${this.#consumer}`, {
      queue: `${this.#consumer}-dead-letters`,
      callback: (err, msg) => {
        if (err) return
        const advisory = decodeMessage(msg, maxDeliveriesAdvisorySchema)
        if (!advisory.ok) {
          this.#log.warn({ problem: advisory.message }, 'ignored malformed max-deliveries advisory')
          return
        }
        const { stream_seq: sequence, deliveries } = advisory.value
        void (async () => {
          const stored = await jsm.streams.getMessage(stream, { seq: sequence })
          if (!stored) return
          await this.send(
            {
              data: stored.data,
              headers: stored.header,
              subject: stored.subject,
              stream,
              sequence,
              deliveries,
              reason: `no worker finished it in ${deliveries} deliveries (worker stopped or timed out)`,
            },
            'advisory'
          )
        })().catch((e: unknown) =>
          this.#log.error(
            { err: errorMessage(e), seq: sequence },
            'could not dead-letter after max deliveries'
          )
        )
      },
    })
  }
}
