/**
 * Fetches a source image without letting the URL steer us anywhere private:
 * - every hop (the URL and each redirect, at most MAX_REDIRECTS) is checked against the allowlist;
 * - a hostname is resolved once, every address it resolves to is checked, and the connection goes to
 *   the checked address (the request's `lookup` returns it), so a second DNS answer cannot differ;
 *   TLS still verifies the hostname (SNI and Host stay the hostname);
 * - connect timeout per hop and one total deadline for the whole fetch;
 * - the size limit is enforced from Content-Length and again while streaming, aborting past it;
 * - the bytes are sniffed as soon as enough have arrived, so an HTML page is dropped early.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import { isIP, type LookupFunction } from 'node:net'
import { ImageError } from './image-error.ts'
import { blockedAddressReason } from '../outbound/address-guard.ts'
import { checkSourceUrl, type SourcePolicy } from './source-policy.ts'
import { SNIFF_BYTES, sniffImageType, type SourceFormat } from './sniff-image-type.ts'

export const MAX_REDIRECTS = 3

export interface FetchLimits {
  maxBytes: number
  connectTimeoutMs: number
  totalTimeoutMs: number
}

export interface FetchedSource {
  bytes: Buffer
  format: SourceFormat
  /** The URL the bytes came from, after redirects. */
  url: string
}

const requestHeaders = {
  'user-agent': 'vtta-images/1 (+https://vtta.io)',
  accept: 'image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8',
  // Images are already compressed; and a gzip body would not sniff as an image.
  'accept-encoding': 'identity',
}

// Keep-alive pools: a pooled socket is always connected to an address that was checked when it opened.
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8, timeout: 30_000 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8, timeout: 30_000 }),
}

export async function fetchSource(
  policy: SourcePolicy,
  source: string,
  limits: FetchLimits
): Promise<FetchedSource> {
  const deadline = AbortSignal.timeout(limits.totalTimeoutMs)
  try {
    let url = source
    for (let redirects = 0; ; redirects++) {
      const check = checkSourceUrl(policy, url)
      if (!check.ok)
        throw new ImageError(check.code, redirects ? `redirect: ${check.message}` : check.message)
      const address = check.pinnedAddress ?? (await resolveChecked(check.url.hostname, deadline))
      const res = await get(check.url, address, limits.connectTimeoutMs, deadline)
      const status = res.statusCode ?? 0
      if ([301, 302, 303, 307, 308].includes(status)) {
        res.destroy()
        if (redirects >= MAX_REDIRECTS)
          throw new ImageError(
            'source_too_many_redirects',
            `the source redirected more than ${MAX_REDIRECTS} times`
          )
        const location = res.headers.location
        if (!location)
          throw new ImageError('source_http_error', `the origin answered ${status} without a Location`)
        try {
          url = new URL(location, check.url).href
        } catch {
          throw new ImageError('source_invalid_url', 'the origin redirected to an invalid URL')
        }
        continue
      }
      if (status === 404 || status === 410) {
        res.destroy()
        throw new ImageError('source_not_found', `the origin answered ${status}`)
      }
      if (status < 200 || status > 299) {
        res.destroy()
        throw new ImageError('source_http_error', `the origin answered ${status}`)
      }
      const { bytes, format } = await readBody(res, limits.maxBytes)
      return { bytes, format, url: check.url.href }
    }
  } catch (error) {
    if (error instanceof ImageError) throw error
    if (deadline.aborted)
      throw new ImageError('source_timeout', `the source took longer than ${limits.totalTimeoutMs} ms`)
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
    throw new ImageError('source_unreachable', `the origin could not be reached (${code})`, { cause: error })
  }
}

/** Resolves once; refuses when any address is not public (a mixed answer is not trusted either). */
async function resolveChecked(hostname: string, signal: AbortSignal): Promise<string> {
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
  if (isIP(bare)) return bare // an allowlisted IP literal, already checked by the policy
  let addresses: { address: string; family: number }[]
  try {
    // getaddrinfo cannot be cancelled; the deadline only stops us waiting for it.
    addresses = await abortable(dnsLookup(hostname, { all: true, verbatim: true }), signal)
  } catch (error) {
    if (signal.aborted) throw error
    throw new ImageError('source_unreachable', `the source host ${hostname} does not resolve`, {
      cause: error,
    })
  }
  if (addresses.length === 0)
    throw new ImageError('source_unreachable', `the source host ${hostname} does not resolve`)
  for (const { address } of addresses) {
    const reason = blockedAddressReason(address)
    if (reason !== null)
      throw new ImageError(
        'source_address_blocked',
        `the source host ${hostname} resolves to an address that is not allowed (${reason})`
      )
  }
  return addresses[0]!.address
}

function get(
  url: URL,
  address: string,
  connectTimeoutMs: number,
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
      agent: agents[url.protocol as 'http:' | 'https:'],
      headers: requestHeaders,
      lookup: pinned,
      signal,
    })
    req.once('socket', (socket) => {
      if (!socket.connecting) return
      const timer = setTimeout(
        () =>
          req.destroy(new ImageError('source_timeout', `could not connect within ${connectTimeoutMs} ms`)),
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

/** Reads the body up to `maxBytes`, sniffing its type as soon as SNIFF_BYTES have arrived. */
function readBody(res: IncomingMessage, maxBytes: number): Promise<{ bytes: Buffer; format: SourceFormat }> {
  const tooLarge = () => new ImageError('source_too_large', `the source is larger than ${maxBytes} bytes`)
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
    let format: SourceFormat | undefined
    let settled = false
    const fail = (error: Error) => {
      if (settled) return
      settled = true
      reject(error)
      // After rejecting: destroying emits the reset that would otherwise win the race.
      res.destroy()
    }
    const head = () =>
      into
        ? into.subarray(0, Math.min(length, SNIFF_BYTES))
        : Buffer.concat(chunks, Math.min(length, SNIFF_BYTES))
    const sniff = (): boolean => {
      const sniffed = sniffImageType(head())
      if (sniffed.ok) format = sniffed.format
      else fail(new ImageError('source_not_an_image', sniffed.message))
      return sniffed.ok
    }
    res.on('data', (chunk: Buffer) => {
      if (settled) return
      if (length + chunk.length > (into ? into.length : maxBytes)) {
        return fail(
          into
            ? new ImageError('source_http_error', 'the origin sent more than its Content-Length')
            : tooLarge()
        )
      }
      if (into) chunk.copy(into, length)
      else chunks.push(chunk)
      length += chunk.length
      if (format === undefined && length >= SNIFF_BYTES) sniff()
    })
    res.once('end', () => {
      if (settled) return
      if (length === 0) return fail(new ImageError('source_not_an_image', 'the source is empty'))
      if (format === undefined && !sniff()) return
      settled = true
      resolve({ bytes: into ? into.subarray(0, length) : Buffer.concat(chunks, length), format: format! })
    })
    // Aborts (the deadline) and resets surface here; fetchSource maps them.
    res.once('error', fail)
    res.once('aborted', () => fail(new Error('ECONNRESET')))
  })
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
