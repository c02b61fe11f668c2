/**
 * The image proxy's contract, shared by the edge (parses and normalises the URL options, picks the
 * format from Accept, builds the cache key) and the image service (validates and transforms).
 *
 * URL options are named as Cloudflare Image Resizing names them, comma-separated:
 *   /img/width=400,height=300,fit=cover,format=auto,dpr=2/https://www.dndbeyond.com/avatars/1.png
 */
import { z } from 'zod'

/** The largest output side, after dpr is folded in. */
export const MAX_DIMENSION = 8192
/**
 * The largest output area (all frames of an animation together), 16 MP: an 8192x8192 output would be
 * 67 MP, about 270 MB of RGBA per transform. The edge refuses a width x height beyond it; the image
 * service scales derived sizes down to it and refuses a padded box (or animation) beyond it.
 */
export const MAX_OUTPUT_PIXELS = 16_000_000
/** `sharpen` is kept in steps of this size (see parseImageOptions); `blur` in whole numbers. */
export const SHARPEN_STEP = 0.5

export const fits = ['scale-down', 'contain', 'cover', 'crop', 'pad'] as const
export const gravities = ['auto', 'center', 'top', 'bottom', 'left', 'right'] as const
export const requestFormats = ['auto', 'avif', 'webp', 'jpeg', 'png'] as const
/** What the image service is asked for: `auto` resolved by the edge; `original` keeps the source's format. */
export const outputFormats = ['avif', 'webp', 'jpeg', 'png', 'original'] as const
export const metadataModes = ['none', 'copyright', 'keep'] as const

export type Fit = (typeof fits)[number]
export type Gravity = (typeof gravities)[number]
export type RequestFormat = (typeof requestFormats)[number]
export type OutputFormat = (typeof outputFormats)[number]

const hexColor = /^#(?:[0-9a-f]{3}|[0-9a-f]{4}|[0-9a-f]{6}|[0-9a-f]{8})$/
const namedColors: Record<string, string> = { white: '#ffffff', black: '#000000', transparent: '#00000000' }

/** Normalised options: defaults filled in, dpr folded into the sizes, irrelevant options reset. */
export const imageOptionsSchema = z.strictObject({
  width: z.number().int().min(1).max(MAX_DIMENSION).optional(),
  height: z.number().int().min(1).max(MAX_DIMENSION).optional(),
  fit: z.enum(fits),
  gravity: z.enum(gravities),
  format: z.enum(requestFormats),
  /** Absent: the service's per-format default. */
  quality: z.number().int().min(1).max(100).optional(),
  /** `#rrggbb` or `#rrggbbaa`, lowercase. Absent: white when flattening, transparent when padding. */
  background: z
    .string()
    .regex(/^#[0-9a-f]{6}(?:[0-9a-f]{2})?$/)
    .optional(),
  rotate: z.union([z.literal(90), z.literal(180), z.literal(270)]).optional(),
  blur: z.number().int().min(1).max(250).optional(),
  sharpen: z.number().multipleOf(SHARPEN_STEP).min(SHARPEN_STEP).max(10).optional(),
  metadata: z.enum(metadataModes),
})
export type ImageOptions = z.infer<typeof imageOptionsSchema>

export const resolvedImageOptionsSchema = imageOptionsSchema.extend({ format: z.enum(outputFormats) })
export type ResolvedImageOptions = z.infer<typeof resolvedImageOptionsSchema>

export type OptionsResult =
  { ok: true; options: ImageOptions } | { ok: false; option: string; message: string }

const aliases: Record<string, string> = { w: 'width', h: 'height', q: 'quality', f: 'format', g: 'gravity' }

function parseNumber(
  text: string,
  opts: { min: number; max: number; integer?: boolean }
): number | undefined {
  if (!/^\d+(?:\.\d+)?$/.test(text)) return undefined
  const n = Number(text)
  if (opts.integer && !Number.isInteger(n)) return undefined
  return n >= opts.min && n <= opts.max ? n : undefined
}

function parseColor(text: string): string | undefined {
  const value = decodeURIComponent(text).toLowerCase()
  const named = namedColors[value]
  if (named) return named
  if (!hexColor.test(value)) return undefined
  const hex = value.slice(1)
  // #rgb and #rgba expand to #rrggbb and #rrggbbaa; an opaque alpha is dropped so equal colours share a key.
  const full = hex.length <= 4 ? [...hex].map((c) => c + c).join('') : hex
  return `#${full.length === 8 && full.endsWith('ff') ? full.slice(0, 6) : full}`
}

/**
 * Parses the options segment of an image URL. Unknown or out-of-range options fail with the
 * option named; the result is normalised so that equal transforms compare (and cache) equal.
 */
export function parseImageOptions(segment: string): OptionsResult {
  const raw: Record<string, string> = {}
  const parts = segment === '' || segment === '_' ? [] : segment.split(',')
  if (parts.length > 16) return { ok: false, option: '(options)', message: 'too many options' }
  for (const part of parts) {
    const eq = part.indexOf('=')
    const key = eq < 0 ? part : part.slice(0, eq)
    const name = aliases[key] ?? key
    if (eq < 0 || eq === part.length - 1)
      return { ok: false, option: name || '(empty)', message: 'expected name=value' }
    if (name in raw) return { ok: false, option: name, message: 'given twice' }
    raw[name] = part.slice(eq + 1)
  }

  const fail = (option: string, message: string): OptionsResult => ({ ok: false, option, message })
  let width: number | undefined
  let height: number | undefined
  let dpr = 1
  const options: ImageOptions = { fit: 'scale-down', gravity: 'auto', format: 'auto', metadata: 'none' }
  for (const [name, value] of Object.entries(raw)) {
    switch (name) {
      case 'width':
      case 'height': {
        const n = parseNumber(value, { min: 1, max: MAX_DIMENSION, integer: true })
        if (n === undefined) return fail(name, `must be a whole number from 1 to ${MAX_DIMENSION}`)
        if (name === 'width') width = n
        else height = n
        break
      }
      case 'dpr': {
        const n = parseNumber(value, { min: 1, max: 4 })
        if (n === undefined) return fail(name, 'must be a number from 1 to 4')
        dpr = n
        break
      }
      case 'quality': {
        const n = parseNumber(value, { min: 1, max: 100, integer: true })
        if (n === undefined) return fail(name, 'must be a whole number from 1 to 100')
        options.quality = n
        break
      }
      case 'fit':
      case 'gravity':
      case 'format':
      case 'metadata': {
        const allowed: readonly string[] = {
          fit: fits,
          gravity: gravities,
          format: requestFormats,
          metadata: metadataModes,
        }[name]
        if (!allowed.includes(value)) return fail(name, `must be one of ${allowed.join(', ')}`)
        ;(options as Record<string, unknown>)[name] = value
        break
      }
      case 'background': {
        const color = parseColor(value)
        if (!color)
          return fail(name, 'must be a hex colour (#rgb, #rrggbb, #rrggbbaa) or white, black, transparent')
        options.background = color
        break
      }
      case 'rotate': {
        if (!['0', '90', '180', '270'].includes(value)) return fail(name, 'must be 90, 180 or 270')
        if (value !== '0') options.rotate = Number(value) as 90 | 180 | 270
        break
      }
      // Blur and sharpen are rounded (blur to a whole radius, sharpen to a half step) so that
      // blur=100.1 and blur=100 are one transform and one cache key: unrounded, every decimal would
      // be a new cache miss, and a new transform, for an image that looks the same.
      case 'blur': {
        const n = parseNumber(value, { min: 0, max: 250 })
        if (n === undefined) return fail(name, 'must be a number from 0 to 250')
        const radius = Math.round(n)
        if (radius >= 1) options.blur = radius
        break
      }
      case 'sharpen': {
        const n = parseNumber(value, { min: 0, max: 10 })
        if (n === undefined) return fail(name, 'must be a number from 0 to 10')
        const strength = Math.round(n / SHARPEN_STEP) * SHARPEN_STEP
        if (strength > 0) options.sharpen = strength
        break
      }
      default:
        return fail(name, 'unknown option')
    }
  }
  // Fold dpr into the pixel sizes: width=400,dpr=2 and width=800 are the same transform.
  if (width !== undefined) options.width = Math.min(MAX_DIMENSION, Math.round(width * dpr))
  if (height !== undefined) options.height = Math.min(MAX_DIMENSION, Math.round(height * dpr))
  // Gravity only picks what a crop keeps; elsewhere it changes nothing and must not split the cache.
  if (options.fit !== 'cover' && options.fit !== 'crop') options.gravity = 'auto'
  if (options.width === undefined && options.height === undefined && options.fit === 'pad')
    options.fit = 'scale-down'
  // Only a box with both sides can be judged here (one side's partner follows the source's aspect
  // ratio, which the image service checks once it has read the source's header).
  if (!withinOutputArea(options))
    return fail(
      width === undefined ? 'height' : 'width',
      `width x height (after dpr) may be at most ${MAX_OUTPUT_PIXELS} pixels; ` +
        `${options.width}x${options.height} is ${options.width! * options.height!}`
    )
  return { ok: true, options }
}

/** Whether a box with both sides given fits MAX_OUTPUT_PIXELS (a box with one side or none passes). */
export function withinOutputArea(options: { width?: number; height?: number }): boolean {
  const { width, height } = options
  return width === undefined || height === undefined || width * height <= MAX_OUTPUT_PIXELS
}

/** The options in one fixed order, defaults included: the options part of the cache key. */
export function canonicalOptions(options: ImageOptions | ResolvedImageOptions): string {
  const order = [
    'width',
    'height',
    'fit',
    'gravity',
    'format',
    'quality',
    'background',
    'rotate',
    'blur',
    'sharpen',
    'metadata',
  ] as const
  return order
    .filter((key) => options[key] !== undefined)
    .map((key) => `${key}=${options[key]}`)
    .join(',')
}

/** Resolves `format=auto` from the client's Accept header: AVIF, then WebP, else the source's own format. */
export function negotiateFormat(format: RequestFormat, accept: string | null | undefined): OutputFormat {
  if (format !== 'auto') return format
  const types = (accept ?? '').toLowerCase()
  if (/\bimage\/avif\b/.test(types)) return 'avif'
  if (/\bimage\/webp\b/.test(types)) return 'webp'
  return 'original'
}

export const MAX_SOURCE_URL_LENGTH = 2048

/** `images.<dc>.transform` request body. */
export const transformRequestSchema = z.strictObject({
  source: z.string().max(MAX_SOURCE_URL_LENGTH),
  options: resolvedImageOptionsSchema.refine(withinOutputArea, {
    message: `width x height may be at most ${MAX_OUTPUT_PIXELS} pixels`,
  }),
})
export type TransformRequest = z.infer<typeof transformRequestSchema>

/** Headers of the `images.<dc>.transform` request. */
export const imageRequestHeaders = {
  /**
   * Epoch milliseconds at which the edge stops waiting for the reply (it sends now + IMAGE_TIMEOUT_MS).
   * The service does not start work past it and gives up on work that runs past it
   * (`deadline_exceeded`). Clocks of the edge and the datacenters are NTP-synchronised; absent: no
   * deadline beyond the service's own time limits.
   */
  deadline: 'x-deadline',
} as const

/**
 * The reply is a stream of messages on the request's reply subject, ended by one empty message
 * (nats-core `requestMany` with the sentinel strategy), so an image larger than the server's
 * max_payload is delivered whole. Every data message carries these headers.
 */
export const imageReplyHeaders = {
  /** HTTP status the edge should answer with (200, or the error's status). */
  status: 'Image-Status',
  contentType: 'Content-Type',
  /** `<index>/<count>`, 1-based, on every data message. */
  chunk: 'Image-Chunk',
  width: 'Image-Width',
  height: 'Image-Height',
  /**
   * The strong ETag of the whole reply body (all chunks; an error's JSON too), as `etagOfDigest`
   * makes it. The edge answers it as the image's ETag instead of hashing the body again: it comes
   * from our own service over the edge's authenticated NATS connection.
   */
  etag: 'Image-ETag',
} as const

/** A body's strong ETag from its SHA-256 digest: the first 16 bytes in hex, quoted. */
export function etagOfDigest(sha256: Uint8Array): string {
  let hex = ''
  for (const byte of sha256.subarray(0, 16)) hex += byte.toString(16).padStart(2, '0')
  return `"${hex}"`
}

/** What `etagOfDigest` gives: an `Image-ETag` of any other form is not used. */
export const imageEtagPattern = /^"[0-9a-f]{32}"$/

/** Stable error codes of the image service, with the HTTP status the edge answers. */
export const imageErrors = {
  invalid_request: 400,
  source_invalid_url: 400,
  source_scheme_not_allowed: 400,
  source_host_not_allowed: 403,
  source_address_blocked: 403,
  source_not_found: 404,
  source_too_large: 413,
  source_not_an_image: 415,
  image_too_many_pixels: 422,
  /** An animation with more frames, or a longer duration, than the service animates. */
  image_too_many_frames: 422,
  /** The output would be larger than MAX_OUTPUT_PIXELS (a padded box, or all frames together). */
  output_too_large: 422,
  image_unreadable: 422,
  source_http_error: 502,
  source_unreachable: 502,
  source_too_many_redirects: 502,
  busy: 503,
  /** The edge's deadline (`x-deadline`) passed before the work was done: nobody waits for it any more. */
  deadline_exceeded: 504,
  source_timeout: 504,
  internal: 500,
} as const satisfies Record<string, number>
export type ImageErrorCode = keyof typeof imageErrors

export const imageErrorBodySchema = z.strictObject({
  error: z.strictObject({
    code: z.enum(Object.keys(imageErrors) as [ImageErrorCode, ...ImageErrorCode[]]),
    message: z.string(),
  }),
})
