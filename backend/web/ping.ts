/** Answers `ping.<dc>`: the edge's request/reply round trip through its NATS bridge. */
import type { NatsConnection, Subscription } from '@nats-io/nats-core'
import { queueGroups, subjects } from '#shared/subjects.ts'
import { pingRequestSchema, type PingReply } from '#shared/schemas.ts'
import { decodeMessage } from '../runtime/messages.ts'

export function answerPings(nc: NatsConnection, dc: string): Subscription {
  return nc.subscribe(subjects.ping(dc), {
    queue: queueGroups.web,
    callback: (err, msg) => {
      if (err) return
      const request = decodeMessage(msg, pingRequestSchema)
      if (!request.ok) {
        msg.respond(
          JSON.stringify({
            error: { code: 'bad_request', message: `expected {from, sentAt}: ${request.message}` },
          })
        )
        return
      }
      const reply: PingReply = { dc, service: 'web', at: Date.now() }
      msg.respond(JSON.stringify(reply))
    },
  })
}
