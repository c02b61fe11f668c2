/**
 * Fetching a URL that someone else chose (an image source, a release asset) without letting it steer
 * us anywhere private:
 * - every hop (the URL and each redirect, at most MAX_REDIRECTS) is checked against the allowlist
 *   (allowlist.ts);
 * - a host name is resolved once, every address it resolves to is checked (address-guard.ts), and the
 *   connection goes to the checked address (the request's `lookup` returns it), so a second DNS answer
 *   cannot differ; TLS still verifies the host name (SNI and Host stay the host name);
 * - headers given for the first URL's origin (credentials) are not sent to another origin;
 * - an optional connect timeout per hop, and one total deadline for the whole fetch;
 * - the size limit is enforced from Content-Length and again while streaming, aborting past it;
 * - an optional `inspect` judges the first bytes as soon as they have arrived (an image service drops
 *   an HTML page early).
 * Failures are returned as typed values (FetchFailure); each service maps them to its own codes.
 */
import { errorMessage, errnoCode } from '#shared/error-message.ts'
import { lookup as dnsLookup } from 'node:dns/promises'
import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import { isIP, type LookupFunction } from 'node:net'
import { blockedAddressReason } from './address-guard.ts'
import { checkUrl, privateHint, type Allowlist, type UrlRefusal } from './allowlist.ts'

export const MAX_REDIRECTS = 3

export interface FetchOptions {
  allowlist: Allowlist
  /** What is fetched, for messages: "the source", "asset module.zip". */
  what: string
  maxBytes: number
  /** The whole fetch, redirects included. */
  totalTimeoutMs: number
  /** Per hop, to connect; without it only the total deadline applies. */
  connectTimeoutMs?: number
  /** Request headers; any sent for the first URL's origin only (credentials) go nowhere else. */
  headers?: Record<string, string>
  /** Called as bytes arrive (a long download keeps its work item alive). */
  onProgress?: () => void
}

/** Judges the first `bytes` bytes (fewer at the end of a short body): a value, or why they are refused. */
export interface Inspector<T> {
  bytes: number
  judge(head: Uint8Array): { ok: true; value: T } | { ok: false; message: string }
}

export type FetchFailure =
  | {
      code:
        | UrlRefusal
        | 'too_many_redirects'
        /** A redirect without a Location. */
        | 'bad_redirect'
        | 'too_large'
        /** The body ran past its own Content-Length. */
        | 'length_mismatch'
        /** The inspector refused the first bytes. */
        | 'refused_content'
        | 'timeout'
        /** No connection, no DNS answer, a reset. */
        | 'unreachable'
      message: string
      cause?: unknown
    }
  | { code: 'http_status'; status: number; retryAfterMs: number | undefined; message: string }

export type FetchFailureCode = FetchFailure['code']

export type Fetched<T> =
  | {
      ok: true
      bytes: Buffer
      /** The URL the bytes came from, after redirects. */
      url: string
      inspected: T
    }
  | { ok: false; failure: FetchFailure }

/** Thrown inside this module only, to carry a failure out of callbacks and streams. */
class Failed extends Error {
  readonly failure: FetchFailure
  constructor(failure: FetchFailure) {
    super(failure.message)
    this.failure = failure
  }
}
const fail = (failure: FetchFailure): Failed => new Failed(failure)

// Images are already compressed, zips too; and the size limit counts the bytes on the wire.
const fixedHeaders = { 'accept-encoding': 'identity' }

// Keep-alive pools: a pooled socket is always connected to an address that was checked when it opened.
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8, timeout: 30_000 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8, timeout: 30_000 }),
}

export function safeFetch(source: string, options: FetchOptions): Promise<Fetched<undefined>>
export function safeFetch<T>(
  source: string,
  options: FetchOptions,
  inspector: Inspector<T>
): Promise<Fetched<T>>
export async function safeFetch<T>(
  source: string,
  o: FetchOptions,
  inspector?: Inspector<T>
): Promise<Fetched<T | undefined>> {
  const deadline = AbortSignal.timeout(o.totalTimeoutMs)
  try {
    let url = source
    let origin: string | undefined
    for (let redirects = 0; ; redirects++) {
      const check = checkUrl(o.allowlist, url, o.what)
      if (!check.ok)
        throw fail({ code: check.code, message: redirects ? `redirect: ${check.message}` : check.message })
      origin ??= check.url.origin
      const address =
        check.pinnedAddress ?? (await resolveChecked(check.url.hostname, deadline, o.allowlist, o.what))
      const headers = {
        ...(check.url.origin === origin ? o.headers : withoutCredentials(o.headers)),
        ...fixedHeaders,
      }
      const res = await get(check.url, address, headers, o.connectTimeoutMs, deadline)
      const status = res.statusCode ?? 0
      if ([301, 302, 303, 307, 308].includes(status)) {
        res.destroy()
        if (redirects >= MAX_REDIRECTS)
          throw fail({
            code: 'too_many_redirects',
            message: `${o.what} redirected more than ${MAX_REDIRECTS} times`,
          })
        const location = res.headers.location
        if (!location)
          throw fail({ code: 'bad_redirect', message: `the origin answered ${status} without a Location` })
        try {
          url = new URL(location, check.url).href
        } catch {
          throw fail({ code: 'invalid_url', message: 'the origin redirected to an invalid URL' })
        }
        continue
      }
      if (status < 200 || status > 299) {
        res.destroy()
        throw fail({
          code: 'http_status',
          status,
          retryAfterMs: retryAfterMs(res.headers['retry-after']),
          message: `the origin answered ${status}`,
        })
      }
      const body = await readBody(res, o, inspector)
      return { ok: true, ...body, url: check.url.href }
    }
  } catch (error) {
    if (error instanceof Failed) return { ok: false, failure: error.failure }
    if (deadline.aborted)
      return {
        ok: false,
        failure: { code: 'timeout', message: `${o.what} took longer than ${o.totalTimeoutMs} ms` },
      }
    const code = errnoCode(error) ?? errorMessage(error)
    return {
      ok: false,
      failure: { code: 'unreachable', message: `the origin could not be reached (${code})`, cause: error },
    }
  }
}

/** Resolves once; refuses when any address is not public (a mixed answer is not trusted either). */
async function resolveChecked(
  hostname: string,
  signal: AbortSignal,
  allowlist: Allowlist,
  what: string
): Promise<string> {
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
  if (isIP(bare)) return bare // an allowlisted IP literal, already checked by the allowlist
  let addresses: { address: string; family: number }[]
  try {
    // getaddrinfo cannot be cancelled; the deadline only stops us waiting for it.
    addresses = await abortable(dnsLookup(hostname, { all: true, verbatim: true }), signal)
  } catch (error) {
    if (signal.aborted) throw error
    throw fail({ code: 'unreachable', message: `${what} host ${hostname} does not resolve`, cause: error })
  }
  if (addresses.length === 0)
    throw fail({ code: 'unreachable', message: `${what} host ${hostname} does not resolve` })
  for (const { address } of addresses) {
    const reason = blockedAddressReason(address)
    if (reason !== null)
      throw fail({
        code: 'address_blocked',
        message: `${what} host ${hostname} resolves to an address that is not allowed (${reason}); ${privateHint(allowlist)}`,
      })
  }
  return addresses[0]!.address
}

function get(
  url: URL,
  address: string,
  headers: Record<string, string>,
  connectTimeoutMs: number | undefined,
  signal: AbortSignal
): Promise<IncomingMessage> {
  const family = isIP(address)
  // Node asks with `all: true` when it races address families; either way it gets the checked address.
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address, family }])
    else callback(null, address, family)
  }
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http
    const req = client.request(url, {
      agent: url.protocol === 'https:' ? agents['https:'] : agents['http:'],
      headers,
      lookup: pinned,
      signal,
    })
    if (connectTimeoutMs !== undefined)
      req.once('socket', (socket) => {
        if (!socket.connecting) return
        const timer = setTimeout(
          () =>
            req.destroy(
              fail({ code: 'timeout', message: `could not connect within ${connectTimeoutMs} ms` })
            ),
          connectTimeoutMs
        )
        socket.once('connect', () => clearTimeout(timer))
        socket.once('close', () => clearTimeout(timer))
      })
    req.once('response', resolve)
    req.once('error', reject)
    req.end()
  })
}

/** Reads the body up to `maxBytes`, judging its first bytes as soon as they have arrived. */
function readBody<T>(
  res: IncomingMessage,
  o: FetchOptions,
  inspector: Inspector<T> | undefined
): Promise<{ bytes: Buffer; inspected: T | undefined }> {
  const { maxBytes, what } = o
  const tooLarge = () => fail({ code: 'too_large', message: `${what} is larger than ${maxBytes} bytes` })
  const declared = Number(res.headers['content-length'])
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy()
    return Promise.reject(tooLarge())
  }
  return new Promise((resolve, reject) => {
    // With a Content-Length the body goes straight into one buffer of that size (no second copy at the
    // end, which matters with a queue of multi-megabyte sources); otherwise chunks are joined at the end.
    const into = Number.isFinite(declared) && declared > 0 ? Buffer.allocUnsafe(declared) : undefined
    const chunks: Buffer[] = []
    let length = 0
    let judged: { value: T } | undefined
    let settled = false
    const stop = (error: Error) => {
      if (settled) return
      settled = true
      reject(error)
      // After rejecting: destroying emits the reset that would otherwise win the race.
      res.destroy()
    }
    const head = (bytes: number) =>
      into ? into.subarray(0, Math.min(length, bytes)) : Buffer.concat(chunks, Math.min(length, bytes))
    /** False (and the fetch failed) when the inspector refuses the first bytes. */
    const judge = (i: Inspector<T>): boolean => {
      const verdict = i.judge(head(i.bytes))
      if (verdict.ok) judged = { value: verdict.value }
      else stop(fail({ code: 'refused_content', message: verdict.message }))
      return verdict.ok
    }
    res.on('data', (chunk: Buffer) => {
      if (settled) return
      if (length + chunk.length > (into ? into.length : maxBytes)) {
        return stop(
          into
            ? fail({ code: 'length_mismatch', message: 'the origin sent more than its Content-Length' })
            : tooLarge()
        )
      }
      if (into) chunk.copy(into, length)
      else chunks.push(chunk)
      length += chunk.length
      o.onProgress?.()
      if (inspector && !judged && length >= inspector.bytes) judge(inspector)
    })
    res.once('end', () => {
      if (settled) return
      if (inspector && !judged && !judge(inspector)) return
      settled = true
      resolve({
        bytes: into ? into.subarray(0, length) : Buffer.concat(chunks, length),
        inspected: judged?.value,
      })
    })
    // Aborts (the deadline) and resets surface here; safeFetch maps them.
    res.once('error', stop)
    res.once('aborted', () => stop(new Error('ECONNRESET')))
  })
}

function withoutCredentials(headers: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers ?? {}).filter(
      ([name]) => !['authorization', 'cookie'].includes(name.toLowerCase())
    )
  )
}

/** Retry-After (seconds or HTTP date) in milliseconds. */
function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  const reason = () => (signal.reason instanceof Error ? signal.reason : new Error('aborted'))
  if (signal.aborted) return Promise.reject(reason())
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(reason())
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
