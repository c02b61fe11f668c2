/**
 * One transform with sharp, following Cloudflare Image Resizing's option semantics.
 *
 * Safety: the header is read first and images over `maxInputPixels` (per frame, and all frames together
 * for an animation) are refused before any pixel is decoded; decoding fails on errors (`failOn: 'error'`,
 * so a truncated JPEG is refused with a clear message, while harmless warnings pass); a processing
 * timeout bounds pathological inputs.
 *
 * Order of operations: EXIF auto-orient, then `rotate`, then resize (sharp shrinks on load for JPEG and
 * WebP), then blur and sharpen, then alpha flattening, metadata and encoding. `rotate` is applied
 * before the resize, so width and height refer to the rotated image, as Cloudflare documents; sharp
 * also mis-sizes an EXIF auto-orient combined with a rotation after the resize.
 *
 * Output is 8-bit sRGB (16-bit, CMYK, greyscale and tagged inputs are converted), metadata stripped
 * unless asked for:
 *   - `copyright`: only the EXIF Copyright tag is written back (withExif), for JPEG, PNG, WebP and AVIF.
 *     XMP/IPTC rights statements are dropped.
 *   - `keep`: EXIF, XMP and IPTC are kept (keepMetadata); the pixels are still converted to sRGB and
 *     tagged with an sRGB ICC profile, and the EXIF Orientation is reset because the pixels are upright.
 *
 * Animated GIF and WebP stay animated when the output can animate (WebP, or GIF as `original`) and
 * no `rotate` is asked (sharp cannot rotate multi-page images); otherwise the first frame is used.
 * Animations crop with centre gravity, since sharp's attention strategy works on single images. An
 * animation that would stay animated is refused (`image_too_many_frames`) when it has more frames or a
 * longer duration than the limits, judged from the header before any frame is decoded.
 *
 * Amplification limits (see resizeOptions): only `pad` enlarges the source, and the output, all
 * frames together, is at most MAX_OUTPUT_PIXELS.
 */
import { errorMessage } from '#shared/error-message.ts'
import sharp, { type Sharp, type ResizeOptions, type Metadata } from 'sharp'
import { MAX_DIMENSION, MAX_OUTPUT_PIXELS, type ResolvedImageOptions } from '#shared/images.ts'
import { ImageError } from './error.ts'
import { exifCopyright } from './exif-copyright.ts'
import type { SourceFormat } from './sniff-image-type.ts'

export type EncodedFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif'

export const contentTypes: Record<EncodedFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  gif: 'image/gif',
}

/** Per-format quality when the request names none (Cloudflare uses 85; WebP and AVIF hold up lower). */
export const defaultQuality = { jpeg: 85, webp: 82, avif: 55 } as const

export interface TransformLimits {
  /** Pixels of one frame, and of all frames of an animation together. */
  maxInputPixels: number
  timeoutMs: number
  /** AVIF encoder effort 0-9 (IMAGE_AVIF_EFFORT; see config.ts for what each costs). */
  avifEffort: number
  /** Frames an animation may have to be animated (IMAGE_MAX_FRAMES); more: `image_too_many_frames`. */
  maxFrames: number
  /** Its total duration in ms (IMAGE_MAX_ANIMATION_MS); longer: `image_too_many_frames`. */
  maxAnimationMs: number
}

export interface TransformedImage {
  data: Buffer
  format: EncodedFormat
  contentType: string
  width: number
  /** Of one frame. */
  height: number
  frames: number
}

type Rgba = { r: number; g: number; b: number; alpha: number }
const WHITE: Rgba = { r: 255, g: 255, b: 255, alpha: 1 }
const TRANSPARENT: Rgba = { r: 0, g: 0, b: 0, alpha: 0 }

/** What sharp may have decoded: its own detection must agree that this is one of our source formats. */
const decodableFormats = new Set(['jpeg', 'png', 'gif', 'webp', 'heif', 'tiff'])

export async function transformImage(
  input: Buffer,
  sourceFormat: SourceFormat,
  options: ResolvedImageOptions,
  limits: TransformLimits
): Promise<TransformedImage> {
  // Header only: no pixels are decoded here, so the pixel limit is ours to apply (with a useful message).
  const meta = await decodeStep(() => sharp(input, { limitInputPixels: false }).metadata(), limits)
  if (!meta.width || !meta.height || !meta.format)
    throw new ImageError('image_unreadable', 'the image has no size')
  if (!decodableFormats.has(meta.format))
    throw new ImageError('source_not_an_image', `the source is ${meta.format}, which is not accepted`)
  const frameHeight = meta.pageHeight ?? meta.height
  const framePixels = meta.width * frameHeight
  if (framePixels > limits.maxInputPixels)
    throw new ImageError(
      'image_too_many_pixels',
      `the image is ${meta.width}x${frameHeight} pixels, more than the limit of ${limits.maxInputPixels}`
    )

  const format = encodedFormat(options.format, sourceFormat, meta.hasAlpha === true)
  const frames = meta.pages ?? 1
  const animated =
    frames > 1 &&
    (sourceFormat === 'gif' || sourceFormat === 'webp') &&
    (format === 'webp' || format === 'gif') &&
    options.rotate === undefined &&
    framePixels * frames <= limits.maxInputPixels
  if (animated) {
    // From the header, before any frame is decoded: every frame costs decode, resize and encode time.
    const durationMs = (meta.delay ?? []).reduce((sum, ms) => sum + ms, 0)
    if (frames > limits.maxFrames)
      throw new ImageError(
        'image_too_many_frames',
        `the animation has ${frames} frames, more than the limit of ${limits.maxFrames}`
      )
    if (durationMs > limits.maxAnimationMs)
      throw new ImageError(
        'image_too_many_frames',
        `the animation lasts ${durationMs} ms, longer than the limit of ${limits.maxAnimationMs} ms`
      )
  }

  // The image as the viewer sees it: EXIF orientation 5-8 and a quarter turn swap the sides.
  let [width, height] = [meta.width, frameHeight]
  if ((meta.orientation ?? 1) >= 5) [width, height] = [height, width]
  if (options.rotate === 90 || options.rotate === 270) [width, height] = [height, width]

  const shape = { format, animated, width, height, frames: animated ? frames : 1 }
  const pipeline = buildPipeline(input, meta, options, shape, limits)
  const { data, info } = await decodeStep(() => pipeline.toBuffer({ resolveWithObject: true }), limits)
  return {
    data,
    format,
    contentType: contentTypes[format],
    width: info.width,
    height: info.pageHeight ?? info.height,
    frames: animated ? (info.pages ?? frames) : 1,
  }
}

/** `original` keeps the source's format where browsers show it; TIFF becomes PNG (alpha) or JPEG. */
export function encodedFormat(
  requested: ResolvedImageOptions['format'],
  source: SourceFormat,
  hasAlpha: boolean
): EncodedFormat {
  if (requested !== 'original') return requested
  if (source === 'tiff') return hasAlpha ? 'png' : 'jpeg'
  return source
}

function buildPipeline(
  input: Buffer,
  meta: Metadata,
  options: ResolvedImageOptions,
  shape: Shape & { format: EncodedFormat },
  limits: TransformLimits
): Sharp {
  const { format, animated } = shape
  let image = sharp(input, {
    animated,
    limitInputPixels: limits.maxInputPixels,
    failOn: 'error',
    autoOrient: true,
  }).timeout({ seconds: Math.max(1, Math.ceil(limits.timeoutMs / 1000)) })
  if (options.rotate !== undefined) image = image.rotate(options.rotate)

  const canHoldAlpha = format !== 'jpeg'
  const background = options.background ? parseColour(options.background) : undefined
  const opaqueBackground = background && background.alpha === 1 ? background : undefined
  // Padding: transparent where the format holds alpha, white otherwise, unless a colour is given.
  const padBackground = canHoldAlpha ? (background ?? TRANSPARENT) : (opaqueBackground ?? WHITE)

  const resize = resizeOptions(options, shape, padBackground)
  if (resize) image = image.resize(resize)
  // Cloudflare's blur is a radius (1-250); a Gaussian's visible radius is about 2 sigma.
  if (options.blur !== undefined) image = image.blur(Math.max(0.3, options.blur / 2))
  // Cloudflare's sharpen is a strength 0-10 (1 recommended after downscaling); 2 is sharp's default mask.
  if (options.sharpen !== undefined)
    image = image.sharpen({ sigma: 1, m1: options.sharpen * 0.5, m2: options.sharpen })
  // JPEG has no alpha: flatten onto the background (white unless an opaque colour is given). An
  // opaque background given explicitly goes under transparent images in every format.
  if (!canHoldAlpha) image = image.flatten({ background: opaqueBackground ?? WHITE })
  else if (opaqueBackground) image = image.flatten({ background: opaqueBackground })

  if (options.metadata === 'keep') {
    image = image.keepMetadata().withIccProfile('srgb')
  } else if (options.metadata === 'copyright' && format !== 'gif') {
    const copyright = exifCopyright(meta.exif)
    if (copyright) image = image.withExif({ IFD0: { Copyright: copyright } })
  }
  return encode(image, format, options.quality, limits.avifEffort)
}

/** The source as the viewer sees it (oriented, rotated), and the frames the output will have. */
interface Shape {
  animated: boolean
  width: number
  height: number
  frames: number
}

/**
 * Cloudflare's fits, with two limits of ours: no fit but `pad` enlarges the source (`contain` and
 * `cover` do in Cloudflare; here `contain` acts as `scale-down` and `cover` as `crop`), and the output,
 * all frames together, is at most MAX_OUTPUT_PIXELS. A size derived from the source (one side or none
 * given, or a box the image fits inside) is scaled down to that area; an explicit box (`pad`, `cover`,
 * `crop`) too large for it is refused with `output_too_large`. The edge already refuses a box of more
 * than MAX_OUTPUT_PIXELS, so that only happens to animations here.
 */
function resizeOptions(
  options: ResolvedImageOptions,
  shape: Shape,
  padBackground: Rgba
): ResizeOptions | null {
  const { width: boxWidth, height: boxHeight, fit } = options
  const maxArea = Math.floor(MAX_OUTPUT_PIXELS / shape.frames)
  const inside = (enlarge: boolean): ResizeOptions | null => {
    const [w, h] = [boxWidth ?? MAX_DIMENSION, boxHeight ?? MAX_DIMENSION]
    let scale = Math.min(w / shape.width, h / shape.height)
    if (!enlarge) scale = Math.min(1, scale)
    const area = shape.width * shape.height * scale * scale
    // Judged on the rounded sides sharp will produce, so the cap holds to the pixel.
    if (Math.round(shape.width * scale) * Math.round(shape.height * scale) <= maxArea) {
      if (boxWidth === undefined && boxHeight === undefined && scale >= 1) return null
      return { width: w, height: h, fit: 'inside', withoutEnlargement: !enlarge }
    }
    // Too large: the largest box of the source's aspect ratio within the area, rounded down.
    scale *= Math.sqrt(maxArea / area)
    return {
      width: Math.max(1, Math.floor(shape.width * scale)),
      height: Math.max(1, Math.floor(shape.height * scale)),
      fit: 'inside',
    }
  }
  const box = (width: number, height: number) => {
    if (width * height > maxArea)
      throw new ImageError(
        'output_too_large',
        `${shape.frames} frames of ${width}x${height} are more than ${MAX_OUTPUT_PIXELS} pixels`
      )
    return { width, height }
  }
  if (boxWidth === undefined || boxHeight === undefined) {
    // No size, or one side: every fit scales to it (the other side follows the aspect ratio, capped
    // at MAX_DIMENSION); only pad may enlarge.
    return inside(fit === 'pad')
  }
  const cropPosition =
    options.gravity !== 'auto'
      ? positions[options.gravity]
      : shape.animated
        ? 'centre'
        : sharp.strategy.attention
  switch (fit) {
    case 'scale-down':
    case 'contain':
      return inside(false)
    case 'cover':
    case 'crop': {
      // Cover, but never enlarge: when covering would enlarge, cut the box out of the unscaled image.
      const scale = Math.max(boxWidth / shape.width, boxHeight / shape.height)
      const size =
        scale <= 1
          ? box(boxWidth, boxHeight)
          : box(Math.min(boxWidth, shape.width), Math.min(boxHeight, shape.height))
      return { ...size, fit: 'cover', position: cropPosition }
    }
    case 'pad':
      return { ...box(boxWidth, boxHeight), fit: 'contain', background: padBackground }
  }
}

const positions = { center: 'centre', top: 'top', bottom: 'bottom', left: 'left', right: 'right' } as const

function encode(image: Sharp, format: EncodedFormat, quality: number | undefined, avifEffort: number): Sharp {
  switch (format) {
    case 'jpeg':
      // Progressive, as Cloudflare serves JPEG: smaller, and shows early on slow links.
      return image.jpeg({ quality: quality ?? defaultQuality.jpeg, progressive: true })
    case 'webp':
      return image.webp({ quality: quality ?? defaultQuality.webp })
    case 'avif':
      return image.avif({ quality: quality ?? defaultQuality.avif, effort: avifEffort })
    case 'png':
      // PNG is lossless; a quality asks for a smaller, palette-quantised PNG.
      return quality === undefined ? image.png() : image.png({ palette: true, quality })
    case 'gif':
      return image.gif({ effort: 3 })
  }
}

function parseColour(hex: string): Rgba {
  const n = (at: number) => parseInt(hex.slice(at, at + 2), 16)
  return { r: n(1), g: n(3), b: n(5), alpha: hex.length === 9 ? n(7) / 255 : 1 }
}

/** Runs a step that decodes pixels or headers; sharp's errors become the contract's codes. */
async function decodeStep<T>(step: () => Promise<T>, limits: TransformLimits): Promise<T> {
  try {
    return await step()
  } catch (error) {
    const message = errorMessage(error)
    if (/exceeds pixel limit/i.test(message))
      throw new ImageError('image_too_many_pixels', `the image has more than ${limits.maxInputPixels} pixels`)
    if (/unsupported image format/i.test(message))
      throw new ImageError('source_not_an_image', 'the source is not an image in a supported format')
    if (/timeout/i.test(message))
      throw new ImageError('image_unreadable', `processing the image took longer than ${limits.timeoutMs} ms`)
    const detail = message.split('\n')[0]!.slice(0, 200)
    throw new ImageError('image_unreadable', `the image could not be decoded: ${detail}`, { cause: error })
  }
}
