/**
 * The first tier of the image cache: recent answers kept in this isolate's memory (bounded bytes,
 * least recently used out first), in front of the Workers Cache API. A hot image is then answered
 * without a cache lookup at all. Entries keep their expiry, so a negatively cached error still
 * lapses after its short max-age.
 */
export interface HotEntry {
  status: number
  headers: Array<[string, string]>
  body: Uint8Array
  expires: number
}

export class HotCache {
  readonly maxBytes: number
  readonly maxEntryBytes: number
  readonly #entries = new Map<string, HotEntry>()
  #bytes = 0

  constructor(maxBytes: number, maxEntryBytes = maxBytes / 8) {
    this.maxBytes = maxBytes
    this.maxEntryBytes = maxEntryBytes
  }

  get size(): number {
    return this.#bytes
  }

  get(key: string, now = Date.now()): HotEntry | undefined {
    const entry = this.#entries.get(key)
    if (!entry) return undefined
    this.#entries.delete(key)
    if (entry.expires <= now) {
      this.#bytes -= entry.body.length
      return undefined
    }
    this.#entries.set(key, entry) // most recently used last
    return entry
  }

  set(key: string, entry: HotEntry): void {
    if (entry.body.length > this.maxEntryBytes) return
    const old = this.#entries.get(key)
    if (old) {
      this.#entries.delete(key)
      this.#bytes -= old.body.length
    }
    this.#entries.set(key, entry)
    this.#bytes += entry.body.length
    for (const [oldest, e] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break
      this.#entries.delete(oldest)
      this.#bytes -= e.body.length
    }
  }
}

/** Seconds of freshness from a Cache-Control header (s-maxage first), 0 when none. */
export function freshFor(cacheControl: string | null): number {
  const match = /\bs-maxage=(\d+)/.exec(cacheControl ?? '') ?? /\bmax-age=(\d+)/.exec(cacheControl ?? '')
  return match ? Number(match[1]) : 0
}
