/**
 * The datacenter of the bridge benchmark (bench/bridge-shards.ts): a responder on `images.<dc>.transform`
 * in the image service's queue group that answers every request the way the image service answers a
 * transform, with no work behind it: one data message of REPLY_BYTES fixed bytes, then the empty
 * sentinel. What the bridges carry is then all there is to measure.
 *
 * It connects as NATS_USER: the bench takes the operator. The image service's own user may answer
 * only through allowResponses (shared/nats-permissions.ts: up to 1,024 replies within a minute), so
 * nats-server keeps every request's reply subject delivered to it for that minute, and once it holds
 * more than 4,096 it walks them all on each further request (server/client.go, deliverMsg and
 * pruneReplyPerms). At a thousand requests a second that walk costs nats-server more than a request
 * costs the bridge, and grows for the first minute of a run: a datacenter's cost, not the bridges'.
 *
 *   NATS_URL=nats://… NATS_USER=operator NATS_SEED=<its seed> DC=<dc> REPLY_BYTES=32768 \
 *     node bench/bridge-responder.ts
 * Started and stopped (SIGTERM) by bench/bridge-shards.ts; it is ready once a request is answered.
 */
import { connect } from '@nats-io/transport-node'
import { z } from 'zod'
import { natsComponents, natsUserAuth } from '#shared/nats-permissions.ts'
import { queueGroups, subjects } from '#shared/subjects.ts'

const env = z
  .object({
    NATS_URL: z.string().min(1),
    NATS_USER: z.enum(natsComponents),
    NATS_SEED: z.string().min(1),
    DC: z.string().min(1),
    REPLY_BYTES: z.coerce.number().int().min(1).max(1_000_000),
  })
  .parse(process.env)

const reply = new Uint8Array(env.REPLY_BYTES).fill(0x5a)
const sentinel = new Uint8Array(0)
const nc = await connect({
  servers: env.NATS_URL,
  name: 'bench-bridge-responder',
  ...natsUserAuth(env.NATS_USER, env.NATS_SEED),
})
const sub = nc.subscribe(subjects.imageTransform(env.DC), {
  queue: queueGroups.images,
  callback: (error, msg) => {
    if (error) return
    msg.respond(reply)
    msg.respond(sentinel)
  },
})
console.log(`answering ${sub.getSubject()} with ${env.REPLY_BYTES} bytes`)
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void nc.drain().finally(() => process.exit(0))
  })
