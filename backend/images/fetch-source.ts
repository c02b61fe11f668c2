/**
 * A source image, fetched through the outbound fetcher (backend/outbound/fetch.ts: the allowlist on
 * every hop, DNS pinned to checked public addresses, size and time limits) with its first bytes
 * sniffed as they arrive, so an HTML page is dropped early. The fetcher's failures become the image
 * contract's codes (shared/images.ts) in one table.
 */
import type { ImageErrorCode } from '#shared/images.ts'
import type { Allowlist } from '../outbound/allowlist.ts'
import { safeFetch, type FetchFailure, type FetchFailureCode, type Inspector } from '../outbound/fetch.ts'
import { ImageError } from './error.ts'
import { SNIFF_BYTES, sniffImageType, type SourceFormat } from './sniff-image-type.ts'

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
}

/** What the source is, from its first bytes; an empty body is not an image either. */
const sniffer: Inspector<SourceFormat> = {
  bytes: SNIFF_BYTES,
  judge(head) {
    if (head.length === 0) return { ok: false, message: 'the source is empty' }
    const sniffed = sniffImageType(head)
    return sniffed.ok ? { ok: true, value: sniffed.format } : sniffed
  },
}

/** The fetcher's failures as image error codes; an HTTP status is judged on its own (404 and 410). */
export const sourceErrors: Record<Exclude<FetchFailureCode, 'http_status'>, ImageErrorCode> = {
  invalid_url: 'source_invalid_url',
  scheme_not_allowed: 'source_scheme_not_allowed',
  host_not_allowed: 'source_host_not_allowed',
  address_blocked: 'source_address_blocked',
  too_many_redirects: 'source_too_many_redirects',
  bad_redirect: 'source_http_error',
  too_large: 'source_too_large',
  length_mismatch: 'source_http_error',
  refused_content: 'source_not_an_image',
  timeout: 'source_timeout',
  unreachable: 'source_unreachable',
}

export function sourceError(failure: FetchFailure): ImageError {
  if (failure.code === 'http_status')
    return new ImageError(
      failure.status === 404 || failure.status === 410 ? 'source_not_found' : 'source_http_error',
      failure.message
    )
  return new ImageError(sourceErrors[failure.code], failure.message, { cause: failure.cause })
}

export async function fetchSource(
  allowlist: Allowlist,
  source: string,
  limits: FetchLimits
): Promise<FetchedSource> {
  const fetched = await safeFetch(
    source,
    { allowlist, what: 'the source', headers: requestHeaders, ...limits },
    sniffer
  )
  if (!fetched.ok) throw sourceError(fetched.failure)
  return { bytes: fetched.bytes, format: fetched.inspected, url: fetched.url }
}
