/**
 * NatsBridge: a Durable Object, one per datacenter (named by its id), that holds one NATS
 * connection over WebSocket and multiplexes every request through it. A Worker cannot keep a socket
 * across requests, so this is what makes an edge-to-NATS request cost one round trip, not five.
 *
 * Failures come back as values with a stable code (RPC would strip error classes), so callers can
 * tell "nobody listens here" (try the next datacenter) from "too slow".
 */
import { DurableObject } from 'cloudflare:workers'
import { errors, headers as natsHeaders, wsconnect, type NatsConnection } from '@nats-io/nats-core'
import type { Bindings } from '../env.ts'
import { edgeConfig } from '../config.ts'

export type BridgeFailure = 'unknown_datacenter' | 'unreachable' | 'no_responders' | 'timeout'

export type BridgeReply =
  | { ok: true; data: Uint8Array; headers: Record<string, string>; connects: number }
  | { ok: false; code: BridgeFailure; message: string; connects: number }

export interface BridgeRequest {
  dc: string
  subject: string
  payload: string | Uint8Array
  timeoutMs?: number
  headers?: Record<string, string>
}

const CONNECT_TIMEOUT_MS = 2_000
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000

export class NatsBridge extends DurableObject<Bindings> {
  #connection?: Promise<NatsConnection>
  #connects = 0

  /** Connection attempts made so far (observability and tests). */
  connects(): number {
    return this.#connects
  }

  #connect(url: string): Promise<NatsConnection> {
    if (!this.#connection) {
      this.#connects++
      const pending = wsconnect({
        servers: url,
        name: 'edge-bridge',
        reconnect: false,
        timeout: CONNECT_TIMEOUT_MS,
      })
      this.#connection = pending
      // Forget a dead connection so the next call redials instead of failing forever.
      const forget = () => {
        if (this.#connection === pending) this.#connection = undefined
      }
      pending.then((nc) => nc.closed().finally(forget), forget)
    }
    return this.#connection
  }

  async request(req: BridgeRequest): Promise<BridgeReply> {
    const dc = edgeConfig(this.env).byId.get(req.dc)
    if (!dc)
      return {
        ok: false,
        code: 'unknown_datacenter',
        message: `unknown datacenter ${req.dc}`,
        connects: this.#connects,
      }
    let nc: NatsConnection
    try {
      nc = await this.#connect(dc.endpoints.natsWs)
    } catch (error) {
      return {
        ok: false,
        code: 'unreachable',
        message: `NATS of ${dc.id}: ${String(error)}`,
        connects: this.#connects,
      }
    }
    const h = natsHeaders()
    for (const [key, value] of Object.entries(req.headers ?? {})) h.set(key, value)
    try {
      const msg = await nc.request(req.subject, req.payload, {
        timeout: req.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        headers: h,
      })
      const replyHeaders: Record<string, string> = {}
      for (const [key] of msg.headers ?? []) replyHeaders[key] = msg.headers!.get(key)
      return { ok: true, data: msg.data, headers: replyHeaders, connects: this.#connects }
    } catch (error) {
      return { ok: false, ...classify(error), connects: this.#connects }
    }
  }
}

function classify(error: unknown): { code: BridgeFailure; message: string } {
  if (
    error instanceof errors.NoRespondersError ||
    (error instanceof errors.RequestError && error.isNoResponders())
  )
    return { code: 'no_responders', message: 'no responders' }
  if (error instanceof errors.TimeoutError) return { code: 'timeout', message: 'request timed out' }
  return { code: 'unreachable', message: String(error) }
}
