/**
 * Publishing `packaged` and `rejected` events to the RELEASES stream, validated against the shared
 * schema first and with deterministic message ids, so a replay after a crash is stored once.
 */
import type { JetStreamClient } from '@nats-io/jetstream'
import {
  packagedEventSchema,
  packagedMsgId,
  rejectedEventSchema,
  rejectedMsgId,
  releaseEventsStream,
  type PackagedEvent,
  type RejectedEvent,
} from '#shared/releases.ts'

async function publish(
  js: JetStreamClient,
  subject: string,
  body: PackagedEvent | RejectedEvent,
  msgID: string
): Promise<{ duplicate: boolean }> {
  const ack = await js.publish(subject, JSON.stringify(body), { msgID })
  return { duplicate: ack.duplicate }
}

export function publishPackaged(js: JetStreamClient, event: PackagedEvent): Promise<{ duplicate: boolean }> {
  const body = packagedEventSchema.parse(event)
  return publish(js, releaseEventsStream.packaged, body, packagedMsgId(body))
}

export function publishRejected(js: JetStreamClient, event: RejectedEvent): Promise<{ duplicate: boolean }> {
  const body = rejectedEventSchema.parse(event)
  return publish(js, releaseEventsStream.rejected, body, rejectedMsgId(body))
}
