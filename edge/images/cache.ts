/**
 * The edge cache of transformed images (Workers Cache API). The key holds the normalised options
 * with the negotiated format (the Cache API ignores Vary) and the source, so equal transforms
 * share one entry whatever order or aliases the URL used.
 */
import {
  canonicalOptions,
  etagOfDigest,
  imageEtagPattern,
  type ResolvedImageOptions,
} from '#shared/images.ts'

/** A URL under a host we never serve: keys are ours alone, never a real request's URL. */
const KEY_ORIGIN = 'https://image-cache.vtta.internal'

export function imageCacheKey(options: ResolvedImageOptions, source: string): Request {
  return new Request(`${KEY_ORIGIN}/${canonicalOptions(options)}/${encodeURIComponent(source)}`)
}

export const cacheControl = {
  /** A transform of a given source and options never changes. */
  success: 'public, max-age=31536000, immutable',
  /** Errors are cached briefly, so a broken origin is not hammered and recovers soon. */
  error: 'public, max-age=60',
} as const

/** Strong ETag: a hash of the bytes. */
export async function strongEtag(bytes: Uint8Array): Promise<string> {
  return etagOfDigest(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
}

/**
 * The ETag of an image-service reply: the service's own (`Image-ETag`, the same hash) when it sent
 * one of that form, so the edge does not hash the bytes again; else (a service from before the
 * header) the edge's hash of the bytes.
 */
export async function replyEtag(given: string | undefined, bytes: Uint8Array): Promise<string> {
  return given !== undefined && imageEtagPattern.test(given) ? given : strongEtag(bytes)
}
