/**
 * HEAD never poisons the edge cache (finding H2): a HEAD is answered from the GET's cache entry or
 * fetched upstream as a GET, and only a GET's complete answer, of exactly its content-length, is
 * stored. Against the seeded registry of the edge tests' web services (test/support/seed-registry.ts).
 */
import { describe, expect, it } from 'vitest'
import { exports } from 'cloudflare:workers'
import { exactLength } from '../../edge/modules/route.ts'
import { imageCacheKey } from '../../edge/images/cache.ts'
import { parseImageOptions } from '#shared/images.ts'
import { seededModule } from './seeded-module.ts'

const fra = { 'x-client-geo': '50.11,8.68' }
const edge = (path: string, method: 'GET' | 'HEAD' = 'GET') =>
  exports.default.fetch(new Request(`https://edge.test${path}`, { method, headers: fra }))
const { id, version, zipBytes } = seededModule
const zipPath = `/modules/${id}/${version}/module.zip`
const manifestPath = `/modules/${id}/${version}/module.json`

/** workerd keeps a stored body's length with the body, not always as a header. */
const declaredLength = (res: Response) => {
  const value = res.headers.get('content-length')
  return value === null ? null : Number(value)
}

/** The edge stores in the background (waitUntil): wait until the entry is there. */
const cached = (path: string) =>
  expect.poll(async () => (await caches.default.match(`https://edge.test${path}`)) !== undefined, {
    timeout: 5_000,
  })

describe('HEAD on the module registry', () => {
  it('HEAD then GET on an uncached zip: the GET is a HIT with the whole zip, of its content-length', async () => {
    const head = await edge(zipPath, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.headers.get('x-cache')).toBe('MISS')
    expect(head.headers.get('content-length')).toBe(String(zipBytes))
    expect((await head.arrayBuffer()).byteLength).toBe(0)
    await cached(zipPath).toBe(true)

    const get = await edge(zipPath)
    expect(get.status).toBe(200)
    expect(get.headers.get('x-cache')).toBe('HIT')
    const body = new Uint8Array(await get.arrayBuffer())
    expect(body.byteLength).toBe(zipBytes)
    expect(declaredLength(get)).toBeOneOf([null, body.byteLength])
    expect(body.every((b, i) => b === i % 251)).toBe(true)
  })

  it('HEAD on a cached manifest is a HIT with its headers and no body; GET still gets the body', async () => {
    const first = await edge(manifestPath)
    const text = await first.text()
    expect(first.headers.get('x-cache')).toBe('MISS')
    await cached(manifestPath).toBe(true)

    const head = await edge(manifestPath, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.headers.get('x-cache')).toBe('HIT')
    expect(head.headers.get('etag')).toBe(first.headers.get('etag'))
    expect(declaredLength(head)).toBeOneOf([null, new TextEncoder().encode(text).length])
    expect((await head.arrayBuffer()).byteLength).toBe(0)

    const again = await edge(manifestPath)
    expect(again.headers.get('x-cache')).toBe('HIT')
    expect(await again.text()).toBe(text)
  })

  it('HEAD on the latest manifest and the listings caches nothing empty', async () => {
    for (const path of [`/modules/${id}/module.json`, `/api/modules/${id}`]) {
      const head = await edge(path, 'HEAD')
      expect(head.status).toBe(200)
      expect((await head.arrayBuffer()).byteLength).toBe(0)
      await cached(path).toBe(true)
      const get = await edge(path)
      const body = await get.text()
      expect(get.headers.get('x-cache')).toBe('HIT')
      expect(body.length).toBeGreaterThan(0)
      expect(declaredLength(get)).toBeOneOf([null, new TextEncoder().encode(body).length])
    }
  })
})

describe('a cached body always matches its content-length', () => {
  const stream = (...chunks: number[]) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (const n of chunks) controller.enqueue(new Uint8Array(n))
          controller.close()
        },
      })
    ).body!

  it.each([
    ['short', [10, 10], 30],
    ['long', [10, 10, 10], 25],
    ['empty', [], 1],
  ])('a %s body errors instead of being stored', async (_case, chunks, expected) => {
    const key = `https://edge.test/length-check/${_case}`
    const put = caches.default.put(key, new Response(exactLength(stream(...chunks), expected)))
    await expect(put).rejects.toThrow(/does not match content-length/)
    expect(await caches.default.match(key)).toBeUndefined()
  })

  it('an exact body passes through whole', async () => {
    expect((await new Response(exactLength(stream(10, 20), 30)).arrayBuffer()).byteLength).toBe(30)
  })
})

describe('HEAD on the image proxy', () => {
  const source = 'https://www.dndbeyond.com/head-test.png'
  const path = `/img/width=100,format=webp/${source}`
  const parsed = parseImageOptions('width=100,format=webp')
  if (!parsed.ok) throw new Error('bad test options')
  const key = imageCacheKey({ ...parsed.options, format: 'webp' }, source)

  it('a HEAD miss that no datacenter can transform caches nothing', async () => {
    const head = await edge(path, 'HEAD')
    expect(head.status).toBe(502)
    expect(await caches.default.match(key)).toBeUndefined()
  })

  it('a HEAD on a cached image answers its headers without a body, and GET gets the bytes', async () => {
    const bytes = Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff)
    await caches.default.put(
      key,
      new Response(bytes, {
        headers: { 'content-type': 'image/webp', 'cache-control': 'public, max-age=60', etag: '"t"' },
      })
    )
    const head = await edge(path, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.headers.get('x-cache')).toBe('HIT')
    expect((await head.arrayBuffer()).byteLength).toBe(0)
    const get = await edge(path)
    expect(get.headers.get('x-cache')).toBe('HIT')
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(bytes)
  })
})
