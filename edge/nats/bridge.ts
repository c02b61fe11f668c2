/**
 * NatsBridge: a Durable Object that holds one NATS connection to one datacenter over WebSocket and
 * multiplexes every request through it. A Worker cannot keep a socket across requests, so this is
 * what makes an edge-to-NATS request cost one round trip, not five.
 *
 * Which object a request reaches is nats/bridge-stub.ts's choice: each datacenter has one per edge
 * region and shard (BRIDGE_SHARDS, by a hash of the request's key), placed in the datacenter's
 * region by a location hint. The object itself knows none of it: it serves whatever `dc` a request
 * names, so identical requests collapse (`requestStream`'s `collapseKey`) only within one object,
 * which is why images shard by their cache key. With the emulated WAN's legs (DATACENTER_LEGS,
 * steering/legs.ts) the objects are per (edge location, datacenter, shard) instead, and every request
 * to one names the leg's URL (`natsWs`): always the same one, as the bridge is named for it.
 *
 * Failures come back as values with a stable code (RPC would strip error classes), so callers can
 * tell "nobody listens here" (try the next datacenter) from "too slow".
 */
import { DurableObject } from 'cloudflare:workers'
import {
  errors,
  headers as natsHeaders,
  wsconnect,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/nats-core'
import { jetstream } from '@nats-io/jetstream'
import type { Bindings } from '../env.ts'
import { edgeConfig } from '../config.ts'
import { natsUserAuth } from '#shared/nats-permissions.ts'

export type BridgeFailure = 'unknown_datacenter' | 'unreachable' | 'no_responders' | 'timeout'

/**
 * A streamed reply, whole: the bytes of its messages joined in a buffer of their own (see
 * `joinChunks`), the headers of its first message (none when it had no data message), and how
 * many data messages it had.
 */
export type BridgeStreamReply =
  | { ok: true; data: Uint8Array; headers: Record<string, string>; parts: number; connects: number }
  | { ok: false; code: BridgeFailure; message: string; connects: number }

/** The leg a request takes (nats/bridge-stub.ts `natsBridge`): absent, the datacenter's own natsWs. */
interface BridgeLeg {
  natsWs?: string
}

export interface BridgePublish extends BridgeLeg {
  dc: string
  subject: string
  payload: Uint8Array | string
  /** Nats-Msg-Id: JetStream stores a message once per id within the stream's duplicate window. */
  msgId: string
  headers?: Record<string, string>
  timeoutMs?: number
}

export type BridgePublishReply =
  | { ok: true; stream: string; seq: number; duplicate: boolean; attempts: number }
  | { ok: false; code: BridgeFailure; message: string; attempts: number }

export type BridgeReply =
  | { ok: true; data: Uint8Array; headers: Record<string, string>; connects: number }
  | { ok: false; code: BridgeFailure; message: string; connects: number }

export interface BridgeRequest extends BridgeLeg {
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
  readonly #inFlight = new Map<string, Promise<BridgeStreamReply>>()

  /** Connection attempts made so far (observability and tests). */
  connects(): number {
    return this.#connects
  }

  #connect(url: string, seed: string): Promise<NatsConnection> {
    if (!this.#connection) {
      this.#connects++
      const pending = wsconnect({
        servers: url,
        name: 'edge-bridge',
        // The edge's own NATS user (shared/nats-permissions.ts): it may publish requests and
        // deliveries, and receive only on its own inbox prefix.
        ...natsUserAuth('edge', seed),
        reconnect: false,
        timeout: CONNECT_TIMEOUT_MS,
        // No call-site stack captured per request: classify() turns every failure into a code.
        noAsyncTraces: true,
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

  async #open(
    dcId: string,
    leg: BridgeLeg
  ): Promise<{ ok: true; nc: NatsConnection } | { ok: false; code: BridgeFailure; message: string }> {
    const config = edgeConfig(this.env)
    const dc = config.byId.get(dcId)
    if (!dc) return { ok: false, code: 'unknown_datacenter', message: `unknown datacenter ${dcId}` }
    try {
      return { ok: true, nc: await this.#connect(leg.natsWs ?? dc.endpoints.natsWs, config.natsEdgeSeed) }
    } catch (error) {
      return { ok: false, code: 'unreachable', message: `NATS of ${dc.id}: ${String(error)}` }
    }
  }

  async request(req: BridgeRequest): Promise<BridgeReply> {
    const conn = await this.#open(req.dc, req)
    if (!conn.ok) return { ...conn, connects: this.#connects }
    const nc = conn.nc
    try {
      const msg = await nc.request(req.subject, req.payload, {
        timeout: req.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        headers: toHeaders(req.headers),
      })
      return { ok: true, data: msg.data, headers: fromHeaders(msg.headers), connects: this.#connects }
    } catch (error) {
      return { ok: false, ...classify(error), connects: this.#connects }
    }
  }

  /**
   * A request answered by a stream of messages ended by an empty one (the sentinel), so a reply
   * larger than the server's max_payload arrives whole, joined in one buffer. No sentinel within
   * the time: a timeout.
   */
  async requestStream(req: BridgeRequest, collapseKey?: string): Promise<BridgeStreamReply> {
    if (collapseKey === undefined) return this.#requestStream(req)
    // Identical requests in flight at the same time share one backend request (and its reply).
    let pending = this.#inFlight.get(collapseKey)
    if (!pending) {
      pending = this.#requestStream(req).finally(() => this.#inFlight.delete(collapseKey))
      this.#inFlight.set(collapseKey, pending)
    }
    return pending
  }

  async #requestStream(req: BridgeRequest): Promise<BridgeStreamReply> {
    const conn = await this.#open(req.dc, req)
    if (!conn.ok) return { ...conn, connects: this.#connects }
    const timeoutMs = req.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    const chunks: Uint8Array[] = []
    let headers: Record<string, string> = {}
    try {
      const replies = await conn.nc.requestMany(req.subject, req.payload, {
        strategy: 'sentinel',
        maxWait: timeoutMs,
        headers: toHeaders(req.headers),
      })
      for await (const msg of replies) {
        if (msg.data.length === 0)
          return {
            ok: true,
            data: joinChunks(chunks),
            headers,
            parts: chunks.length,
            connects: this.#connects,
          }
        if (chunks.length === 0) {
          if (msg.headers?.hasError && msg.headers.code === 503)
            return { ok: false, code: 'no_responders', message: 'no responders', connects: this.#connects }
          headers = fromHeaders(msg.headers)
        }
        chunks.push(msg.data)
      }
      return {
        ok: false,
        code: 'timeout',
        message: `reply incomplete after ${timeoutMs} ms`,
        connects: this.#connects,
      }
    } catch (error) {
      return { ok: false, ...classify(error), connects: this.#connects }
    }
  }

  /**
   * A JetStream publish with a message id. Retried with the same id while the stream has no
   * leader (an election after a server died answers "no responders" / 503 for a few seconds):
   * the id makes the retry safe.
   */
  async publish(req: BridgePublish): Promise<BridgePublishReply> {
    const conn = await this.#open(req.dc, req)
    if (!conn.ok) return { ...conn, attempts: 0 }
    const deadline = Date.now() + (req.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)
    const js = jetstream(conn.nc)
    let attempts = 0
    let last: { code: BridgeFailure; message: string } = { code: 'timeout', message: 'no attempt' }
    while (Date.now() < deadline) {
      attempts++
      try {
        const ack = await js.publish(req.subject, req.payload, {
          msgID: req.msgId,
          headers: toHeaders(req.headers),
          timeout: Math.max(100, Math.min(2_000, deadline - Date.now())),
        })
        return { ok: true, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate, attempts }
      } catch (error) {
        last = classify(error)
        if (last.code === 'unreachable' && conn.nc.isClosed()) break
      }
      await scheduler.wait(Math.min(250 * attempts, 1_000))
    }
    return { ok: false, ...last, attempts }
  }
}

/**
 * The chunks' bytes in one buffer of exactly their size. A message's data is a view into the
 * WebSocket frame it arrived in, and NATS packs several replies into one frame when they come
 * together: RPC serialises a view with its whole buffer, so a view would copy every reply of the
 * frame to each caller, and the image's hot cache would keep the frame while counting the image.
 */
export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  let offset = 0
  for (const chunk of chunks) {
    joined.set(chunk, offset)
    offset += chunk.byteLength
  }
  return joined
}

function toHeaders(values: Record<string, string> | undefined): MsgHdrs {
  const h = natsHeaders()
  for (const [key, value] of Object.entries(values ?? {})) h.set(key, value)
  return h
}

function fromHeaders(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key] of h ?? []) out[key] = h!.get(key)
  return out
}

function classify(error: unknown): { code: BridgeFailure; message: string } {
  if (
    error instanceof errors.NoRespondersError ||
    (error instanceof errors.RequestError && error.isNoResponders()) ||
    // The JetStream client's name for a 503 while a stream has no leader (an election).
    (error instanceof Error && error.name === 'JetStreamNotEnabled')
  )
    return { code: 'no_responders', message: 'no responders' }
  if (error instanceof errors.TimeoutError) return { code: 'timeout', message: 'request timed out' }
  return { code: 'unreachable', message: String(error) }
}
