/**
 * Conditional GETs at the edge (edge/http/cache-headers.ts), one rule for the module registry and
 * the image proxy: a 200 whose ETag matches If-None-Match is 304 Not Modified, without a body or
 * representation headers; a cached error is answered as it is whatever If-None-Match says.
 */
import { describe, expect, it } from 'vitest'
import { env, exports } from 'cloudflare:workers'
import { etagOfDigest } from '#shared/images.ts'
import { replyEtag, strongEtag } from '../../edge/images/cache.ts'
import { seededModule } from './seeded-module.ts'
import { errorOf } from './responses.ts'

/** Its own client address: image misses here count against no other test's rate limit. */
const client = { 'cf-connecting-ip': '203.0.113.41' }
const get = (path: string, headers: Record<string, string>) =>
  exports.default.fetch(new Request(`https://edge.test${path}`, { headers: { ...client, ...headers } }))

async function expectNotModified(path: string, headers: Record<string, string>) {
  const first = await get(path, headers)
  expect(first.status).toBe(200)
  await first.arrayBuffer()
  const etag = first.headers.get('etag')
  expect(etag).toMatch(/^(W\/)?"/)
  const again = await get(path, { ...headers, 'if-none-match': `"other", ${etag}` })
  expect(again.status).toBe(304)
  expect(await again.text()).toBe('')
  expect(again.headers.get('etag')).toBe(etag)
  expect(again.headers.get('content-type')).toBeNull()
  expect(again.headers.get('x-cache')).toMatch(/^(HIT|MISS)$/)
  expect(again.headers.get('x-request-id')).not.toBeNull()
}

describe('If-None-Match at the edge', () => {
  it('a module manifest that matches is 304 Not Modified', async () => {
    const { id, version } = seededModule
    await expectNotModified(`/modules/${id}/${version}/module.json`, { 'x-client-geo': '50.11,8.68' })
  })

  it('an image that matches is 304 Not Modified', async () => {
    await expectNotModified(`/img/width=20,format=webp/${env.IMAGE_ORIGIN}/files/icon.png?conditional`, {
      'x-client-geo': '-33.87,151.21',
    })
  })

  it('a cached image error is answered as it is, never 304', async () => {
    const path = `/img/width=20/${env.IMAGE_ORIGIN}/files/missing.png?conditional`
    const nearSydney = { 'x-client-geo': '-33.87,151.21' }
    const first = await get(path, nearSydney)
    expect(first.status).toBe(404)
    const etag = first.headers.get('etag')
    expect(etag).not.toBeNull()
    expect((await errorOf(first)).code).toBe('source_not_found')

    const again = await get(path, { ...nearSydney, 'if-none-match': etag ?? '' })
    expect(again.status).toBe(404)
    expect(again.headers.get('x-cache')).toBe('HIT')
    expect((await errorOf(again)).code).toBe('source_not_found')
  })
})

describe("an image's ETag", () => {
  const bytes = new TextEncoder().encode('image bytes')

  it('is the hash of its bytes, as the image service sends it', async () => {
    const res = await get(`/img/width=24,format=webp/${env.IMAGE_ORIGIN}/files/icon.png?etag`, {
      'x-client-geo': '-33.87,151.21',
    })
    expect(res.status).toBe(200)
    const body = new Uint8Array(await res.arrayBuffer())
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body))
    expect(res.headers.get('etag')).toBe(etagOfDigest(digest))
  })

  it("is the image service's Image-ETag as it is, without hashing the bytes again", async () => {
    const given = `"${'0123456789abcdef'.repeat(2)}"`
    expect(await replyEtag(given, bytes)).toBe(given)
  })

  it.each([
    ['no Image-ETag', undefined],
    ['a weak one', `W/"${'a'.repeat(32)}"`],
    ['one of another length', '"abc"'],
    ['one with a line break', `"${'a'.repeat(32)}"\r\nset-cookie: x=1`],
  ])('is the hash of the bytes for %s', async (_case, given) => {
    expect(await replyEtag(given, bytes)).toBe(await strongEtag(bytes))
  })
})
