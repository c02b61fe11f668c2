/**
 * Fetching from GitHub without trusting it: only hosts on the allowlist (checked again on every
 * redirect), a byte limit enforced while reading (not only from Content-Length), and a deadline.
 */
import { Rejection, TransientError } from './errors.ts'

export interface LimitedFetchOptions {
  /** `host` or `host:port`, lower-case. */
  allowedHosts: ReadonlySet<string>
  maxBytes: number
  timeoutMs: number
  /** What is fetched, for messages: "asset module.zip". */
  what: string
  headers?: Record<string, string>
  /** Called as bytes arrive, so a long download can keep its work item alive. */
  onProgress?: () => void
}

const MAX_REDIRECTS = 5

/** Parses a comma-separated allowlist (`RELEASE_ASSET_HOSTS`) into lower-case host[:port] entries. */
export function parseHostList(list: string): Set<string> {
  return new Set(
    list
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean)
  )
}

export function hostAllowed(url: URL, allowed: ReadonlySet<string>): boolean {
  // url.host omits a default port, so "github.com" matches https://github.com/…, and "127.0.0.1:9000" a stand-in.
  return (url.protocol === 'https:' || url.protocol === 'http:') && allowed.has(url.host.toLowerCase())
}

/** Retry-After (seconds or HTTP date) in milliseconds. */
function retryAfterMs(res: Response): number | undefined {
  const value = res.headers.get('retry-after')
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

export async function fetchLimited(rawUrl: string, o: LimitedFetchOptions): Promise<Uint8Array> {
  let url: URL
  try {
    url = new URL(rawUrl)
  } catch {
    throw new Rejection('asset_unavailable', `${o.what}: "${rawUrl.slice(0, 200)}" is not a URL`)
  }
  const signal = AbortSignal.timeout(o.timeoutMs)
  const origin = url.host
  try {
    for (let hop = 0; ; hop++) {
      if (!hostAllowed(url, o.allowedHosts))
        throw new Rejection(
          'asset_host_not_allowed',
          `${o.what} is served from ${url.host}, which is not an allowed release asset host`
        )
      // Credentials go to the host they were meant for, never along a redirect to another one.
      const headers = { ...o.headers }
      if (url.host !== origin) delete headers.authorization
      const res = await fetch(url, { headers, redirect: 'manual', signal })
      if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
        await res.body?.cancel()
        if (hop >= MAX_REDIRECTS) throw new Rejection('asset_unavailable', `${o.what}: too many redirects`)
        url = new URL(res.headers.get('location')!, url)
        continue
      }
      if (!res.ok) {
        await res.body?.cancel()
        if (res.status === 429 || res.status >= 500 || res.status === 403)
          // 403 is how GitHub says "rate limited" without a token; all of these pass.
          throw new TransientError(`${o.what}: HTTP ${res.status} from ${url.host}`, retryAfterMs(res))
        if (res.status === 404 || res.status === 410)
          throw new Rejection('asset_missing', `${o.what} was not found (HTTP ${res.status})`)
        throw new Rejection('asset_unavailable', `${o.what}: HTTP ${res.status} from ${url.host}`)
      }
      const declared = Number(res.headers.get('content-length') ?? NaN)
      if (declared > o.maxBytes) {
        await res.body?.cancel()
        throw new Rejection(
          'asset_too_large',
          `${o.what} is ${declared} bytes, more than the limit of ${o.maxBytes}`
        )
      }
      return await readAtMost(res, o)
    }
  } catch (err) {
    if (err instanceof Rejection || err instanceof TransientError) throw err
    if (signal.aborted) throw new TransientError(`${o.what}: no complete answer within ${o.timeoutMs} ms`)
    throw new TransientError(`${o.what}: ${(err as Error).cause ?? (err as Error).message}`)
  }
}

async function readAtMost(res: Response, o: LimitedFetchOptions): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let total = 0
  const reader = res.body!.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > o.maxBytes) {
      await reader.cancel()
      throw new Rejection('asset_too_large', `${o.what} is larger than the limit of ${o.maxBytes} bytes`)
    }
    chunks.push(value)
    o.onProgress?.()
  }
  return Buffer.concat(chunks)
}
