/** Remembers the last heartbeat of each service in this datacenter. */
import type { NatsConnection, Subscription } from '@nats-io/nats-core'
import { subjects } from '#shared/subjects.ts'
import { heartbeatSchema, type Heartbeat } from '#shared/schemas.ts'
import type { Logger } from '../runtime/logger.ts'
import { decodeMessage } from '../runtime/messages.ts'

export class HeartbeatRegistry {
  readonly #last = new Map<string, Heartbeat>()
  #subscription?: Subscription

  readonly staleAfterMs: number

  constructor(staleAfterMs: number) {
    this.staleAfterMs = staleAfterMs
  }

  listen(nc: NatsConnection, dc: string, log: Logger): void {
    this.#subscription = nc.subscribe(subjects.heartbeats(dc), {
      callback: (err, msg) => {
        if (err) return
        const beat = decodeMessage(msg, heartbeatSchema)
        if (!beat.ok || beat.value.dc !== dc) {
          log.warn(
            { subject: msg.subject, problem: beat.ok ? 'wrong datacenter' : beat.message },
            'ignored malformed heartbeat'
          )
          return
        }
        this.#last.set(beat.value.service, beat.value)
      },
    })
  }

  async stop(): Promise<void> {
    await this.#subscription?.drain()
  }

  /** Each service seen, with its state, or `stale` when it has gone quiet. */
  snapshot(now = Date.now()): Record<string, { state: Heartbeat['state'] | 'stale'; lastSeen: number }> {
    const services: Record<string, { state: Heartbeat['state'] | 'stale'; lastSeen: number }> = {}
    for (const [service, beat] of this.#last) {
      services[service] = {
        state: now - beat.at > this.staleAfterMs ? 'stale' : beat.state,
        lastSeen: beat.at,
      }
    }
    return services
  }
}
