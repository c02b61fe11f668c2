/**
 * `POST /webhooks/github`. A delivery is answered only after it is safe: `release` events are
 * stored in JetStream (Nats-Msg-Id = sha256 of the body, so a byte-identical redelivery is a
 * duplicate whatever its X-GitHub-Delivery, which the signature does not cover) through the nearest
 * healthy datacenter, retried with the same id on another one when that fails or has no
 * acknowledgement within DATACENTER_BUDGET_MS; 202 after the acknowledgement, 503 with Retry-After
 * when no datacenter could take it. `ping`: 200. Other events: 204. Wrong or missing signature: 401,
 * before the body is parsed.
 */
import { Hono } from 'hono'
import { deliveryMsgId, githubHeaders } from '#shared/releases.ts'
import { subjects } from '#shared/subjects.ts'
import type { AppEnv } from '../env.ts'
import { ApiError } from '../http/errors.ts'
import { failoverError, withFailover } from '../steering/failover.ts'
import { natsBridge } from '../nats/bridge-stub.ts'
import { deliveryHeaders, readCapped, signatureValid } from './github-delivery.ts'

export const webhooks = new Hono<AppEnv>()

/** GitHub gives up after 10 s; leave room for the answer to travel back. */
const BUDGET_MS = 8_000
/**
 * The most one datacenter gets while another is left to try. A publish is acknowledged within a few
 * hundred milliseconds even across an ocean; a datacenter without an acknowledgement for 2 s cannot
 * reach the stream's leader (cut off from the quorum: its clients' deliveries are stored elsewhere),
 * or the stream is electing one, which the next datacenter waits out with the rest of the budget.
 */
const DATACENTER_BUDGET_MS = 2_000

webhooks.post('/webhooks/github', async (c) => {
  const started = Date.now()
  const secret = c.get('config').githubWebhookSecret
  if (!secret) throw new ApiError('webhook_disabled', 'GITHUB_WEBHOOK_SECRET is not configured')
  const headers = deliveryHeaders(c.req.raw.headers)
  if ('code' in headers) throw new ApiError(headers.code, headers.message)
  const body = await readCapped(c.req.raw)
  if ('code' in body) throw new ApiError(body.code, body.message)
  if (!(await signatureValid(secret, body, headers.signature)))
    throw new ApiError('signature_invalid', 'X-Hub-Signature-256 does not match the body')

  if (headers.event === 'ping') return c.json({ ok: true, event: 'ping', delivery: headers.delivery })
  if (headers.event !== 'release') return c.body(null, 204)

  let action: unknown
  try {
    const payload = JSON.parse(new TextDecoder().decode(body)) as { action?: unknown; release?: unknown }
    if (
      typeof payload !== 'object' ||
      payload === null ||
      typeof payload.release !== 'object' ||
      payload.release === null
    )
      throw new ApiError('payload_invalid', 'a release event needs a `release` object')
    action = payload.action
  } catch (error) {
    if (error instanceof ApiError) throw error
    throw new ApiError('payload_invalid', 'the body is not JSON')
  }
  if (typeof action !== 'string') throw new ApiError('payload_invalid', 'a release event needs an `action`')

  const subject = subjects.githubRelease(action)
  const natsHeaders: Record<string, string> = {
    [githubHeaders.event]: headers.event,
    [githubHeaders.delivery]: headers.delivery,
  }
  if (headers.hookId) natsHeaders[githubHeaders.hookId] = headers.hookId
  // The message id makes a retry on another datacenter, and a replay of the same signed bytes under a
  // new X-GitHub-Delivery (unsigned, so anyone holding one delivery can vary it), safe: stored once.
  const msgId = await deliveryMsgId(body)
  const outcome = await withFailover(
    c,
    async (dc, { last }) => {
      const remaining = BUDGET_MS - (Date.now() - started)
      if (remaining < 200)
        return { ok: false, code: 'out_of_time', message: `${BUDGET_MS} ms spent`, healthy: true }
      const { bridge, natsWs } = natsBridge(c, dc, msgId)
      const ack = await bridge.publish({
        dc: dc.id,
        natsWs,
        subject,
        payload: body,
        msgId,
        headers: natsHeaders,
        timeoutMs: last ? remaining : Math.min(remaining, DATACENTER_BUDGET_MS),
      })
      if (ack.ok) return { ok: true, value: ack }
      // Not acknowledged in time: the stream is electing a leader, or this datacenter cannot reach it.
      // Neither says the datacenter is down for anything else (images, pages), so its health stays.
      const streamSide = ack.code === 'timeout' || ack.code === 'no_responders'
      return { ok: false, code: ack.code, message: ack.message, healthy: streamSide }
    },
    { maxAttempts: c.get('config').datacenters.length }
  )
  if (!outcome.ok) throw failoverError(c, outcome.failures, 'store the delivery', 'store')
  console.log(
    JSON.stringify({
      level: 'info',
      requestId: c.get('requestId'),
      msg: 'delivery stored',
      delivery: headers.delivery,
      action,
      dc: outcome.dc.id,
      seq: outcome.value.seq,
      duplicate: outcome.value.duplicate,
    })
  )
  return c.json(
    {
      stored: true,
      delivery: headers.delivery,
      duplicate: outcome.value.duplicate,
      datacenter: outcome.dc.id,
    },
    202
  )
})
