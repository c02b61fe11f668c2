import { describe, expect, it } from 'vitest'
import { HotCache, freshFor } from '../../edge/images/hot-cache.ts'

const entry = (bytes: number, expires = Date.now() + 60_000) => ({
  status: 200,
  headers: [['content-type', 'image/webp']] as Array<[string, string]>,
  body: new Uint8Array(bytes),
  expires,
})

describe('the in-isolate image cache', () => {
  it('keeps entries up to its byte budget, dropping the least recently used', () => {
    const cache = new HotCache(1_000, 600)
    cache.set('a', entry(400))
    cache.set('b', entry(400))
    expect(cache.get('a')).toBeDefined() // a is now the most recently used
    cache.set('c', entry(400))
    expect(cache.get('b')).toBeUndefined()
    expect(cache.get('a')).toBeDefined()
    expect(cache.get('c')).toBeDefined()
    expect(cache.size).toBe(800)
  })

  it('never holds an entry larger than its per-entry limit', () => {
    const cache = new HotCache(1_000, 600)
    cache.set('big', entry(700))
    expect(cache.get('big')).toBeUndefined()
    expect(cache.size).toBe(0)
  })

  it('lets an entry lapse at its expiry (a briefly cached error)', () => {
    const cache = new HotCache(1_000, 1_000)
    cache.set('err', entry(10, 1_000))
    expect(cache.get('err', 999)).toBeDefined()
    expect(cache.get('err', 1_000)).toBeUndefined()
    expect(cache.size).toBe(0)
  })

  it('replaces an entry under the same key without counting it twice', () => {
    const cache = new HotCache(1_000, 1_000)
    cache.set('a', entry(300))
    cache.set('a', entry(200))
    expect(cache.size).toBe(200)
  })

  it.each([
    ['public, max-age=31536000, immutable', 31536000],
    ['public, max-age=60, s-maxage=30', 30],
    ['no-store', 0],
    [null, 0],
  ])('reads freshness from %j', (header, seconds) => {
    expect(freshFor(header)).toBe(seconds)
  })
})
