/**
 * Source images kept in memory, bounded in bytes (LRU), so a popular source asked for in several
 * sizes and formats is fetched once; concurrent requests for a source being fetched share that fetch.
 * Failures are not cached: the edge caches error answers briefly, and a retry should reach the origin.
 */
import { LRUCache } from 'lru-cache'
import type { FetchedSource } from './fetch-source.ts'

export type OriginCacheResult = 'hit' | 'miss' | 'collapsed'

export interface OriginCacheOptions {
  /** 0 turns caching off (concurrent fetches are still shared). */
  maxBytes: number
  ttlMs: number
}

export class OriginCache {
  readonly #cache: LRUCache<string, FetchedSource> | undefined
  readonly #pending = new Map<string, Promise<FetchedSource>>()
  readonly #fetch: (url: string) => Promise<FetchedSource>

  constructor(options: OriginCacheOptions, fetch: (url: string) => Promise<FetchedSource>) {
    this.#fetch = fetch
    if (options.maxBytes > 0)
      this.#cache = new LRUCache({
        maxSize: options.maxBytes,
        // One huge source must not flush everything else.
        maxEntrySize: Math.max(1, Math.floor(options.maxBytes / 2)),
        sizeCalculation: (source) => Math.max(1, source.bytes.length),
        ttl: options.ttlMs,
        // Expired entries are dropped when touched; memory stays bounded by maxSize regardless.
        ttlAutopurge: false,
      })
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#cache?.calculatedSize ?? 0
  }

  async get(url: string): Promise<{ source: FetchedSource; result: OriginCacheResult }> {
    const cached = this.#cache?.get(url)
    if (cached) return { source: cached, result: 'hit' }
    const pending = this.#pending.get(url)
    if (pending) return { source: await pending, result: 'collapsed' }
    const fetching = this.#fetch(url)
    this.#pending.set(url, fetching)
    try {
      const source = await fetching
      this.#cache?.set(url, source)
      return { source, result: 'miss' }
    } finally {
      this.#pending.delete(url)
    }
  }
}
