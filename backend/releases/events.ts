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

export async function publishPackaged(
  js: JetStreamClient,
  event: PackagedEvent
): Promise<{ duplicate: boolean }> {
  const body = packagedEventSchema.parse(event)
  const ack = await js.publish(releaseEventsStream.packaged, JSON.stringify(body), {
    msgID: packagedMsgId(body),
  })
  return { duplicate: ack.duplicate }
}

export async function publishRejected(
  js: JetStreamClient,
  event: RejectedEvent
): Promise<{ duplicate: boolean }> {
  const body = rejectedEventSchema.parse(event)
  const ack = await js.publish(releaseEventsStream.rejected, JSON.stringify(body), {
    msgID: rejectedMsgId(body),
  })
  return { duplicate: ack.duplicate }
}
