/**
 * Splits an image URL into its parts: `/img/[s:<signature>/]<options>/<source URL>`.
 * The source URL is everything after the options, query string included. Clients and proxies
 * that collapse `//` (`https:/host/...`) and percent-encoded sources are both understood.
 */
import { MAX_SOURCE_URL_LENGTH } from '#shared/images.ts'

export interface ImageUrl {
  signature: string | undefined
  /** The options segment, as given. */
  options: string
  /** The source URL, normalised by the WHATWG parser. */
  source: string
  /** What the signature covers: `/<options>/<source as given>`. */
  signed: string
}

export type ImageUrlResult =
  | { ok: true; url: ImageUrl }
  | { ok: false; code: 'invalid_url' | 'source_scheme_not_allowed'; message: string }

export function parseImageUrl(url: URL): ImageUrlResult {
  const rest = url.pathname.replace(/^\/img\//, '') + url.search
  let signature: string | undefined
  let remainder = rest
  if (remainder.startsWith('s:')) {
    const slash = remainder.indexOf('/')
    if (slash < 0)
      return { ok: false, code: 'invalid_url', message: 'expected /img/s:<signature>/<options>/<source URL>' }
    signature = remainder.slice(2, slash)
    remainder = remainder.slice(slash + 1)
  }
  const slash = remainder.indexOf('/')
  if (slash < 0) return { ok: false, code: 'invalid_url', message: 'expected /img/<options>/<source URL>' }
  const options = remainder.slice(0, slash)
  const given = remainder.slice(slash + 1)
  let raw = given
  if (/^https?%3a/i.test(raw)) {
    try {
      raw = decodeURIComponent(raw)
    } catch {
      return { ok: false, code: 'invalid_url', message: 'the source URL is not valid percent-encoding' }
    }
  }
  raw = raw.replace(/^(https?):\/(?!\/)/i, '$1://')
  if (raw.length === 0) return { ok: false, code: 'invalid_url', message: 'the source URL is missing' }
  if (raw.length > MAX_SOURCE_URL_LENGTH)
    return {
      ok: false,
      code: 'invalid_url',
      message: `the source URL is longer than ${MAX_SOURCE_URL_LENGTH} characters`,
    }
  let source: URL
  try {
    source = new URL(raw)
  } catch {
    return { ok: false, code: 'invalid_url', message: 'the source is not an absolute URL' }
  }
  if (source.protocol !== 'http:' && source.protocol !== 'https:')
    return {
      ok: false,
      code: 'source_scheme_not_allowed',
      message: `${source.protocol} sources are not allowed; use http(s)`,
    }
  if (source.username || source.password)
    return { ok: false, code: 'invalid_url', message: 'credentials in the source URL are not allowed' }
  return { ok: true, url: { signature, options, source: source.href, signed: `/${options}/${given}` } }
}
