import { describe, expect, it } from 'vitest'
import { env, exports } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import { imageCacheKey } from '../../edge/images/cache.ts'
import { parseImageOptions } from '#shared/images.ts'
import { signImagePath } from '../../edge/images/signature.ts'
import { errorOf } from './responses.ts'

const get = (path: string, init?: RequestInit) =>
  exports.default.fetch(new Request(`https://edge.test${path}`, init))

describe('GET /img: bad input is refused at the edge, before any datacenter is asked', () => {
  it.each([
    ['/img/width=abc/https://www.dndbeyond.com/a.png', 400, 'invalid_option', 'width:'],
    ['/img/zoom=2/https://www.dndbeyond.com/a.png', 400, 'invalid_option', 'zoom: unknown option'],
    ['/img/quality=101/https://www.dndbeyond.com/a.png', 400, 'invalid_option', 'quality:'],
    ['/img/width=100/file:///etc/passwd', 400, 'source_scheme_not_allowed', 'file:'],
    ['/img/width=100/gopher://127.0.0.1:70/1', 400, 'source_scheme_not_allowed', 'gopher:'],
    ['/img/width=100', 400, 'invalid_url', 'expected'],
    [`/img/width=100/https://www.dndbeyond.com/${'a'.repeat(3000)}`, 400, 'invalid_url', 'longer than'],
  ])('%s -> %i %s', async (path, status, code, message) => {
    const res = await get(path)
    expect(res.status).toBe(status)
    const error = await errorOf(res)
    expect(error.code).toBe(code)
    expect(error.message).toContain(message)
  })
})

describe('GET /img: no image service anywhere', () => {
  it('tries two datacenters and answers 502 in the JSON error format', async () => {
    const res = await get('/img/width=100/https://www.dndbeyond.com/a.png', {
      headers: { 'x-client-geo': '50.1,8.7' },
    })
    expect(res.status).toBe(502)
    const error = await errorOf(res)
    expect(error.code).toBe('datacenter_unreachable')
    expect(error.message).toMatch(/fra: no_responders.*; .*: no_responders/)
  })
})

describe('signed image URLs', () => {
  const key = 'signing-key-for-the-edge-tests'
  const call = (path: string) =>
    worker.fetch(
      new Request(`https://edge.test${path}`),
      { ...env, IMAGE_SIGNING_KEY: key },
      createExecutionContext()
    )

  it.each([
    ['no signature', '/img/width=100/https://www.dndbeyond.com/a.png'],
    ['a wrong signature', `/img/s:${'A'.repeat(43)}/width=100/https://www.dndbeyond.com/a.png`],
    ['a malformed signature', '/img/s:%3Cscript%3E/width=100/https://www.dndbeyond.com/a.png'],
  ])('refuses %s with 403 when a signing key is set', async (_case, path) => {
    const res = await call(path)
    expect(res.status).toBe(403)
    expect((await errorOf(res)).code).toBe('url_signature_invalid')
  })

  it('lets a correctly signed URL through to the datacenters', async () => {
    const signature = await signImagePath(key, '/width=100/https://www.dndbeyond.com/a.png')
    const res = await call(`/img/s:${signature}/width=100/https://www.dndbeyond.com/a.png`)
    expect(res.status).toBe(502) // past the signature check; no image service runs in these tests
    expect((await errorOf(res)).code).toBe('datacenter_unreachable')
  })
})

describe('GET /img: a transform is kept in the Cache API', () => {
  it('stores the answer it sent, once the request is done, for every isolate of this location', async () => {
    const source = `${env.IMAGE_ORIGIN}/files/icon.png?cache-api`
    const ctx = createExecutionContext()
    const res = await worker.fetch(
      new Request(`https://edge.test/img/width=24,format=png/${source}`, {
        headers: { 'x-client-geo': '-33.87,151.21' },
      }),
      env,
      ctx
    )
    expect(res.status).toBe(200)
    expect(res.headers.get('x-cache')).toBe('MISS')
    const sent = new Uint8Array(await res.arrayBuffer())
    // The copy is written after the answer (a timer turn later): it is there when the request's work is.
    await waitOnExecutionContext(ctx)
    const parsed = parseImageOptions('width=24,format=png')
    if (!parsed.ok) throw new Error(parsed.message)
    const stored = await caches.default.match(imageCacheKey({ ...parsed.options, format: 'png' }, source))
    expect(stored?.headers.get('etag')).toBe(res.headers.get('etag'))
    expect(new Uint8Array(await stored!.arrayBuffer())).toEqual(sent)
  })
})
