import { describe, expect, expectTypeOf, it } from 'vitest'
import { env, exports } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { pingReplySchema } from '#shared/schemas.ts'
import { subjects } from '#shared/subjects.ts'
import { imageReplyHeaders, negotiateFormat, parseImageOptions } from '#shared/images.ts'
import { joinChunks, type NatsBridge } from '../../edge/nats/bridge.ts'
import { errorOf } from './responses.ts'

const ping = (dc: string) => ({
  dc,
  subject: subjects.ping(dc),
  payload: JSON.stringify({ from: 'test', sentAt: Date.now() }),
  timeoutMs: 2_000,
})
const decode = (data: Uint8Array) => pingReplySchema.parse(JSON.parse(new TextDecoder().decode(data)))

describe('NatsBridge: a Durable Object holding a datacenter NATS connection over WebSocket', () => {
  it('is bound with its own type (edge/env.generated.d.ts resolves the class, not `any`)', () => {
    expectTypeOf(env.NATS_BRIDGE).toEqualTypeOf<DurableObjectNamespace<NatsBridge>>()
    expect(env.NATS_BRIDGE.getByName('fra')).toBeDefined()
  })

  it.each(['fra', 'ams', 'lon'])('round-trips ping.%s to that datacenter web service', async (dc) => {
    const reply = await env.NATS_BRIDGE.getByName(dc).request(ping(dc))
    expect(reply.ok).toBe(true)
    if (!reply.ok) return
    expect(decode(reply.data)).toMatchObject({ dc, service: 'web' })
  })

  it('multiplexes concurrent requests over one connection', async () => {
    const stub = env.NATS_BRIDGE.getByName('ams')
    const replies = await Promise.all(Array.from({ length: 20 }, () => stub.request(ping('ams'))))
    expect(replies.every((r) => r.ok)).toBe(true)
    expect(await runInDurableObject(stub, (bridge: NatsBridge) => bridge.connects())).toBe(1)
  })

  it('reports no_responders when nobody serves the subject in that datacenter', async () => {
    const reply = await env.NATS_BRIDGE.getByName('nyc').request(ping('nyc'))
    expect(reply).toMatchObject({ ok: false, code: 'no_responders' })
  })

  it('reports a malformed ping as the web service error, not a crash', async () => {
    const reply = await env.NATS_BRIDGE.getByName('fra').request({
      dc: 'fra',
      subject: subjects.ping('fra'),
      payload: '{"x":',
    })
    expect(reply.ok).toBe(true)
    if (!reply.ok) return
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({ error: { code: 'bad_request' } })
  })

  it('refuses a datacenter outside the catalogue', async () => {
    const reply = await env.NATS_BRIDGE.getByName('xyz').request(ping('xyz'))
    expect(reply).toMatchObject({ ok: false, code: 'unknown_datacenter' })
  })
})

describe('NatsBridge.requestStream: a reply of many messages, whole', () => {
  const transform = (source: string) => {
    const parsed = parseImageOptions('width=20,format=webp')
    if (!parsed.ok) throw new Error(parsed.message)
    const options = { ...parsed.options, format: negotiateFormat(parsed.options.format, null) }
    return {
      dc: 'syd',
      subject: subjects.imageTransform('syd'),
      payload: JSON.stringify({ source, options }),
      timeoutMs: 10_000,
    }
  }

  it("gives the image service's reply in a buffer of exactly its size, with its headers", async () => {
    const reply = await env.NATS_BRIDGE.getByName('syd').requestStream(
      transform(`${env.IMAGE_ORIGIN}/files/icon.png?bridge`)
    )
    expect(reply.ok).toBe(true)
    if (!reply.ok) return
    expect(reply.headers[imageReplyHeaders.status]).toBe('200')
    expect(reply.parts).toBe(1)
    // A WebP file: RIFF....WEBP, its RIFF size the rest of the bytes.
    expect(new TextDecoder().decode(reply.data.subarray(8, 12))).toBe('WEBP')
    const riffSize = new DataView(reply.data.buffer, reply.data.byteOffset).getUint32(4, true)
    expect(riffSize + 8).toBe(reply.data.byteLength)
    // Not a view into the WebSocket frame (which also holds the protocol lines and the sentinel).
    expect(reply.data.byteOffset).toBe(0)
    expect(reply.data.buffer.byteLength).toBe(reply.data.byteLength)
  })

  it('joins chunks that are views into larger buffers into one buffer of their own', () => {
    const frame = new Uint8Array([9, 1, 2, 3, 9, 9, 4, 5, 9])
    const joined = joinChunks([frame.subarray(1, 4), frame.subarray(6, 8)])
    expect([...joined]).toEqual([1, 2, 3, 4, 5])
    expect(joined.buffer.byteLength).toBe(5)
    frame.fill(0)
    expect([...joined]).toEqual([1, 2, 3, 4, 5])
    expect(joinChunks([]).byteLength).toBe(0)
  })
})

describe('GET /health/<dc>: the NATS round trip through the edge', () => {
  it('answers with the datacenter that replied', async () => {
    const res = await exports.default.fetch(new Request('https://edge.test/health/lon'))
    expect(res.status).toBe(200)
    expect(res.headers.get('x-datacenter')).toBe('lon')
    const body = await res.json<{ dc: string; answeredBy: string; roundTripMs: unknown }>()
    expect(body).toMatchObject({ dc: 'lon', answeredBy: 'web' })
    expect(body.roundTripMs).toBeTypeOf('number')
  })

  it('is 503 nats_no_responders where no web service runs', async () => {
    const res = await exports.default.fetch(new Request('https://edge.test/health/nyc'))
    expect(res.status).toBe(503)
    expect((await errorOf(res)).code).toBe('nats_no_responders')
  })

  it('is 404 unknown_datacenter for an id outside the catalogue', async () => {
    const res = await exports.default.fetch(new Request('https://edge.test/health/zzz'))
    expect(res.status).toBe(404)
    expect((await errorOf(res)).code).toBe('unknown_datacenter')
  })
})
