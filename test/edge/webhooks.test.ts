import { describe, expect, it } from 'vitest'
import { env, exports } from 'cloudflare:workers'
import { createExecutionContext } from 'cloudflare:test'
import { sign } from '@octokit/webhooks-methods'
import worker from '../../edge/index.ts'
import { errorOf, withoutHeader } from './responses.ts'

const deliveries = JSON.parse(env.GITHUB_DELIVERIES) as Record<
  string,
  { headers: Record<string, string>; body: string }
>
const secret = "It's a Secret to Everybody"

const post = (headers: Record<string, string>, body: BodyInit | null) =>
  exports.default.fetch(
    new Request('https://edge.test/webhooks/github', {
      method: 'POST',
      headers: { ...headers, 'x-client-geo': '50.11,8.68' },
      body,
    })
  )
const deliver = (name: string) => {
  const d = deliveries[name]!
  return post(withoutHeader(d.headers, 'content-length'), d.body)
}
const signed = async (body: string, extra: Record<string, string> = {}) =>
  post(
    {
      'content-type': 'application/json',
      'x-github-event': 'release',
      'x-github-delivery': crypto.randomUUID(),
      'x-hub-signature-256': await sign(secret, body),
      ...extra,
    },
    body
  )

describe('POST /webhooks/github with the real (signed) fixture deliveries', () => {
  it('has the fixtures', () => {
    expect(Object.keys(deliveries).length).toBeGreaterThanOrEqual(10)
  })

  it('refuses the tampered delivery with 401', async () => {
    const res = await deliver('release-published-tampered')
    expect(res.status).toBe(401)
    expect((await errorOf(res)).code).toBe('signature_invalid')
  })

  it('answers ping with 200 and stores nothing', async () => {
    const res = await deliver('ping')
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ ok: true, event: 'ping' })
  })

  it('stores a release event (202 after the JetStream ack), and its redelivery only once', async () => {
    const first = await deliver('release-published')
    expect(first.status).toBe(202)
    expect(await first.json()).toMatchObject({ stored: true, datacenter: 'fra' })
    const again = await deliver('release-published-redelivery')
    expect(again.status).toBe(202)
    expect(await again.json()).toMatchObject({ stored: true, duplicate: true })
  })

  it('stores a replay of the same signed body under a new X-GitHub-Delivery only once', async () => {
    // The delivery id is not signed: whoever holds one signed delivery can vary it at will.
    const d = deliveries['release-published']!
    const headers = withoutHeader(d.headers, 'content-length')
    const replay = await post({ ...headers, 'X-GitHub-Delivery': crypto.randomUUID() }, d.body)
    expect(replay.status).toBe(202)
    expect(await replay.json()).toMatchObject({ stored: true, duplicate: true })
  })

  it.each([
    'release-released',
    'release-prereleased',
    'release-edited',
    'release-deleted',
    'release-created',
    'release-published-with-assets',
  ])('stores %s', async (name) => {
    const res = await deliver(name)
    expect(res.status).toBe(202)
    expect(await res.json()).toMatchObject({ stored: true })
  })
})

describe('POST /webhooks/github refuses bad input before it is queued', () => {
  it.each([
    ['no signature', { 'x-github-event': 'release', 'x-github-delivery': 'abc' }, 'signature_missing'],
    [
      'a sha1 signature',
      {
        'x-hub-signature': 'sha1=' + 'a'.repeat(40),
        'x-github-event': 'release',
        'x-github-delivery': 'abc',
      },
      'signature_missing',
    ],
    [
      'a malformed signature',
      { 'x-hub-signature-256': 'sha256=zz', 'x-github-event': 'release', 'x-github-delivery': 'abc' },
      'signature_missing',
    ],
    [
      'no event',
      { 'x-hub-signature-256': 'sha256=' + 'a'.repeat(64), 'x-github-delivery': 'abc' },
      'headers_invalid',
    ],
    [
      'no delivery id',
      { 'x-hub-signature-256': 'sha256=' + 'a'.repeat(64), 'x-github-event': 'release' },
      'headers_invalid',
    ],
    [
      'a hostile delivery id',
      {
        'x-hub-signature-256': 'sha256=' + 'a'.repeat(64),
        'x-github-event': 'release',
        'x-github-delivery': '../../x',
      },
      'headers_invalid',
    ],
    [
      'a wrong signature',
      {
        'x-hub-signature-256': 'sha256=' + 'a'.repeat(64),
        'x-github-event': 'release',
        'x-github-delivery': 'abc',
      },
      'signature_invalid',
    ],
  ])('%s: 401', async (_case, headers, code) => {
    const res = await post(headers, '{"action":"published","release":{}}')
    expect(res.status).toBe(401)
    expect((await errorOf(res)).code).toBe(code)
  })

  it('an empty body: 401, never a thrown error', async () => {
    const res = await post(
      {
        'x-hub-signature-256': 'sha256=' + 'a'.repeat(64),
        'x-github-event': 'release',
        'x-github-delivery': 'abc',
      },
      null
    )
    expect(res.status).toBe(401)
  })

  it('a non-JSON body (correctly signed): 400 payload_invalid', async () => {
    const res = await signed('this is not json')
    expect(res.status).toBe(400)
    expect(await errorOf(res)).toMatchObject({ code: 'payload_invalid', message: 'the body is not JSON' })
  })

  it('a release event without `release` (correctly signed): 400 payload_invalid', async () => {
    const res = await signed('{"action":"published","repository":{"id":1}}')
    expect(res.status).toBe(400)
    expect((await errorOf(res)).message).toContain('`release`')
  })

  it('another event (correctly signed): 204, nothing stored', async () => {
    const res = await signed('{"zen":"x"}', { 'x-github-event': 'push' })
    expect(res.status).toBe(204)
  })

  it('an oversized delivery: 413 before the body is read', async () => {
    const res = await post(
      {
        'x-hub-signature-256': 'sha256=' + 'a'.repeat(64),
        'x-github-event': 'release',
        'x-github-delivery': 'abc',
        'content-length': String(26 * 1024 * 1024),
      },
      'x'
    )
    expect(res.status).toBe(413)
    expect((await errorOf(res)).code).toBe('payload_too_large')
  })

  it('an oversized body without a length: 413 while streaming', async () => {
    const big = new Uint8Array(9 * 1024 * 1024).fill(32)
    const res = await post(
      {
        'x-hub-signature-256': 'sha256=' + 'a'.repeat(64),
        'x-github-event': 'release',
        'x-github-delivery': 'abc',
      },
      new ReadableStream({
        start(controller) {
          controller.enqueue(big)
          controller.close()
        },
      })
    )
    expect(res.status).toBe(413)
  })
})

describe('POST /webhooks/github when no datacenter can store it', () => {
  it('answers 503 with Retry-After, so GitHub can be asked to redeliver', async () => {
    const dead = JSON.stringify(
      // Datacenters whose bridges know no NATS server: every attempt fails.
      (JSON.parse(env.DATACENTERS) as Array<Record<string, unknown>>).map((dc) => ({
        ...dc,
        id: `gone-${String(dc.id)}`,
        endpoints: { web: 'http://127.0.0.1:9', natsWs: 'ws://127.0.0.1:9' },
      }))
    )
    const d = deliveries['release-published']!
    const headers = withoutHeader(d.headers, 'content-length')
    const res = await worker.fetch(
      new Request('https://edge.test/webhooks/github', { method: 'POST', headers, body: d.body }),
      { ...env, DATACENTERS: dead },
      createExecutionContext()
    )
    expect(res.status).toBe(503)
    expect(res.headers.get('retry-after')).toBe('30')
    expect((await errorOf(res)).code).toBe('queue_unavailable')
  })
})

describe('POST /webhooks/github when the nearest datacenter is cut off from the stream', () => {
  /** A signed release delivery from a client at `cut` (global-setup.ts). */
  const deliverNearCut = async (body: string) =>
    exports.default.fetch(
      new Request('https://edge.test/webhooks/github', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'release',
          'x-github-delivery': crypto.randomUUID(),
          'x-hub-signature-256': await sign(secret, body),
          'x-client-geo': '-54.8,-68.3',
        },
        body,
      })
    )

  it('gives it 2 s, then stores the delivery through the next one (202, not 503)', async () => {
    // `cut` (global-setup.ts) is nearest to this client, its web service and NATS up, but no stream
    // answers there: a datacenter whose server cannot reach the stream's leader.
    const body = JSON.stringify({ action: 'published', release: { id: 77 }, cut: crypto.randomUUID() })
    const started = Date.now()
    const res = await deliverNearCut(body)
    const elapsed = Date.now() - started
    expect(res.status).toBe(202)
    expect(res.headers.get('x-failover-from')).toBe('cut')
    const stored = await res.json<{ stored: boolean; datacenter: string }>()
    expect(stored.stored).toBe(true)
    expect(stored.datacenter).not.toBe('cut')
    // Its 2 s, then the next one's acknowledgement: well inside the 8 s the cut-off one used to take.
    expect(elapsed).toBeGreaterThanOrEqual(2_000)
    expect(elapsed).toBeLessThan(5_000)
    // Not acknowledged is not down: the next delivery from there tries it first again (its images and
    // pages are served as before).
    const again = await deliverNearCut(body)
    expect(again.status).toBe(202)
    expect(again.headers.get('x-failover-from')).toBe('cut')
  }, 15_000)
})
