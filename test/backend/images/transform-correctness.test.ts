/**
 * The image service's transforms, option by option, against generated images: output format,
 * dimensions, orientation, animation frames, alpha, colour space and metadata of the bytes it sends.
 * Real nats-server, the real service process, requests as the edge sends them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import sharp, { type Metadata } from 'sharp'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import type { ResolvedImageOptions } from '#shared/images.ts'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { startService, type TestService } from '../../support/backend-service.ts'
import { startOriginServer, type OriginServer } from '../../support/origin-server.ts'
import * as fixtures from '../../support/image-fixtures.ts'
import { requestTransform, type TransformAnswer } from './transform-client.ts'
import { natsAuth } from '../../support/nats-credentials.ts'

let nats: TestNatsServer
let origin: OriginServer
let service: TestService
let nc: NatsConnection

async function bands(direction: 'horizontal' | 'vertical'): Promise<Buffer> {
  // Three 200 px bands: red, green, blue, left to right (or top to bottom).
  const colours = ['#ff0000', '#00ff00', '#0000ff']
  const horizontal = direction === 'horizontal'
  return sharp({
    create: {
      width: horizontal ? 600 : 200,
      height: horizontal ? 200 : 600,
      channels: 3,
      background: '#000',
    },
  })
    .composite(
      colours.map((background, i) => ({
        input: { create: { width: 200, height: 200, channels: 3 as const, background } },
        left: horizontal ? i * 200 : 0,
        top: horizontal ? 0 : i * 200,
      }))
    )
    .png()
    .toBuffer()
}

beforeAll(async () => {
  nats = await startNatsServer('images-correctness')
  const files: Record<string, [Promise<Buffer>, string]> = {
    'photo.jpg': [fixtures.photoLikeJpeg(), 'image/jpeg'],
    'alpha.png': [fixtures.alphaPng(), 'image/png'],
    'png16.png': [fixtures.png16(), 'image/png'],
    'cmyk.jpg': [fixtures.cmykJpeg(), 'image/jpeg'],
    'rotated.jpg': [fixtures.exifRotatedJpeg(), 'image/jpeg'],
    'anim.gif': [fixtures.animatedGif(), 'image/gif'],
    'anim.webp': [fixtures.animatedWebp(), 'image/webp'],
    'tiny.png': [fixtures.tinyPng(), 'image/png'],
    'panorama.jpg': [fixtures.panoramaJpeg(), 'image/jpeg'],
    'exif.jpg': [fixtures.jpegWithExif(), 'image/jpeg'],
    'bands-h.png': [bands('horizontal'), 'image/png'],
    'bands-v.png': [bands('vertical'), 'image/png'],
    'photo.tiff': [
      fixtures.photoLikePixels(300, 200).then((px) =>
        sharp(px, { raw: { width: 300, height: 200, channels: 3 } })
          .tiff()
          .toBuffer()
      ),
      'image/tiff',
    ],
    'alpha.tiff': [
      fixtures.alphaPng(300, 200).then((png) => sharp(png).tiff({ compression: 'deflate' }).toBuffer()),
      'image/tiff',
    ],
  }
  origin = await startOriginServer()
  for (const [name, [bytes, contentType]] of Object.entries(files))
    origin.add(name, { body: await bytes, contentType })
  service = await startService('images', {
    DC: 'fra',
    NATS_URL: nats.url,
    IMAGE_SOURCE_HOSTS: origin.origin,
    // Small chunks: every answer above 64 KiB is reassembled from several messages.
    IMAGE_REPLY_CHUNK_BYTES: String(64 * 1024),
  })
  nc = await connect({ servers: nats.url, ...natsAuth() })
})

afterAll(async () => {
  await nc?.close()
  await service?.stop()
  await origin?.close()
  await nats?.dispose()
})

type Rgba = [number, number, number, number]
interface Output {
  answer: TransformAnswer
  meta: Metadata
  pixel(x: number, y: number): Promise<Rgba>
}

async function transform(file: string, options: Partial<ResolvedImageOptions>): Promise<Output> {
  const answer = await requestTransform(nc, { source: origin.fileUrl(file), options })
  expect(answer.error).toBeUndefined()
  expect(answer.status).toBe(200)
  const meta = await sharp(answer.body, { animated: true }).metadata()
  return {
    answer,
    meta,
    async pixel(x, y) {
      const px = await sharp(answer.body)
        .extract({ left: x, top: y, width: 1, height: 1 })
        .ensureAlpha()
        .raw()
        .toBuffer()
      return [px[0]!, px[1]!, px[2]!, px[3]!]
    },
  }
}

const near = (actual: Rgba, expected: Rgba, tolerance = 12) =>
  expect(
    actual.every((v, i) => Math.abs(v - expected[i]!) <= tolerance),
    `${actual.join(',')} is not ${expected.join(',')}`
  ).toBe(true)
const RED: Rgba = [255, 0, 0, 255]
const GREEN: Rgba = [0, 255, 0, 255]
const BLUE: Rgba = [0, 0, 255, 255]
const WHITE: Rgba = [255, 255, 255, 255]

interface Row {
  name: string
  file: string
  options: Partial<ResolvedImageOptions>
  format: 'jpeg' | 'png' | 'webp' | 'avif' | 'gif'
  width: number
  height: number
  pages?: number
  alpha?: boolean
  check?: (out: Output) => Promise<void> | void
}

const rows: Row[] = [
  // A 4000x3000 photo: formats, fits, rotation, effects.
  {
    name: 'photo to WebP at width 800',
    file: 'photo.jpg',
    options: { width: 800 },
    format: 'webp',
    width: 800,
    height: 600,
  },
  {
    name: 'photo to JPEG at width 800',
    file: 'photo.jpg',
    options: { width: 800, format: 'jpeg' },
    format: 'jpeg',
    width: 800,
    height: 600,
  },
  {
    name: 'photo to AVIF at width 800',
    file: 'photo.jpg',
    options: { width: 800, format: 'avif' },
    format: 'avif',
    width: 800,
    height: 600,
  },
  {
    name: 'photo to PNG at width 400',
    file: 'photo.jpg',
    options: { width: 400, format: 'png' },
    format: 'png',
    width: 400,
    height: 300,
  },
  {
    name: 'photo, original format, by height',
    file: 'photo.jpg',
    options: { height: 300, format: 'original' },
    format: 'jpeg',
    width: 400,
    height: 300,
  },
  {
    name: 'photo, width 1600 (800 at dpr 2, folded by the edge)',
    file: 'photo.jpg',
    options: { width: 1600 },
    format: 'webp',
    width: 1600,
    height: 1200,
  },
  {
    name: 'scale-down fits inside the box',
    file: 'photo.jpg',
    options: { width: 400, height: 400 },
    format: 'webp',
    width: 400,
    height: 300,
  },
  {
    name: 'contain fits inside the box',
    file: 'photo.jpg',
    options: { width: 400, height: 400, fit: 'contain' },
    format: 'webp',
    width: 400,
    height: 300,
  },
  {
    name: 'cover fills the box (gravity auto)',
    file: 'photo.jpg',
    options: { width: 400, height: 400, fit: 'cover' },
    format: 'webp',
    width: 400,
    height: 400,
  },
  {
    name: 'cover with one side scales to it',
    file: 'photo.jpg',
    options: { width: 800, fit: 'cover' },
    format: 'webp',
    width: 800,
    height: 600,
  },
  {
    name: 'crop shrinks and cuts to the box',
    file: 'photo.jpg',
    options: { width: 400, height: 200, fit: 'crop', gravity: 'center' },
    format: 'webp',
    width: 400,
    height: 200,
  },
  {
    name: 'pad to the exact size, transparent in WebP',
    file: 'photo.jpg',
    options: { width: 400, height: 400, fit: 'pad' },
    format: 'webp',
    width: 400,
    height: 400,
    alpha: true,
    async check(out) {
      expect((await out.pixel(200, 10))[3]).toBe(0)
      expect((await out.pixel(200, 200))[3]).toBe(255)
    },
  },
  {
    name: 'pad in JPEG is white',
    file: 'photo.jpg',
    options: { width: 400, height: 400, fit: 'pad', format: 'jpeg' },
    format: 'jpeg',
    width: 400,
    height: 400,
    check: async (out) => near(await out.pixel(200, 10), WHITE),
  },
  {
    name: 'pad with a background colour',
    file: 'photo.jpg',
    options: { width: 400, height: 400, fit: 'pad', format: 'png', background: '#ff0000' },
    format: 'png',
    width: 400,
    height: 400,
    check: async (out) => near(await out.pixel(200, 10), RED),
  },
  {
    name: 'rotate 90 swaps the sides',
    file: 'photo.jpg',
    options: { width: 300, rotate: 90 },
    format: 'webp',
    width: 300,
    height: 400,
  },
  {
    name: 'rotate 180 keeps them',
    file: 'photo.jpg',
    options: { width: 300, rotate: 180 },
    format: 'webp',
    width: 300,
    height: 225,
  },
  {
    name: 'rotate 270 swaps the sides',
    file: 'photo.jpg',
    options: { width: 300, rotate: 270 },
    format: 'webp',
    width: 300,
    height: 400,
  },
  {
    name: 'blur',
    file: 'photo.jpg',
    options: { width: 400, blur: 20 },
    format: 'webp',
    width: 400,
    height: 300,
  },
  {
    name: 'sharpen',
    file: 'photo.jpg',
    options: { width: 400, sharpen: 3 },
    format: 'webp',
    width: 400,
    height: 300,
  },

  // Gravity picks what a crop keeps.
  ...(
    [
      ['left', 'bands-h.png', RED],
      ['center', 'bands-h.png', GREEN],
      ['right', 'bands-h.png', BLUE],
      ['top', 'bands-v.png', RED],
      ['bottom', 'bands-v.png', BLUE],
    ] as const
  ).map(([gravity, file, colour]): Row => ({
    name: `cover with gravity ${gravity}`,
    file,
    options: { width: 100, height: 100, fit: 'cover', gravity, format: 'png' },
    format: 'png',
    width: 100,
    height: 100,
    check: async (out) => near(await out.pixel(50, 50), colour),
  })),
  {
    name: 'crop with gravity right',
    file: 'bands-h.png',
    options: { width: 150, height: 150, fit: 'crop', gravity: 'right', format: 'png' },
    format: 'png',
    width: 150,
    height: 150,
    check: async (out) => near(await out.pixel(75, 75), BLUE),
  },

  // Alpha: kept where the format holds it, flattened onto the background otherwise.
  ...(['png', 'webp', 'avif'] as const).map((format): Row => ({
    name: `PNG with alpha to ${format} keeps alpha`,
    file: 'alpha.png',
    options: { width: 300, format },
    format,
    width: 300,
    height: 200,
    alpha: true,
    async check(out) {
      expect((await out.pixel(2, 2))[3]).toBeLessThan(10)
      near(await out.pixel(150, 100), [220, 30, 30, 255], 20)
    },
  })),
  {
    name: 'PNG with alpha to JPEG flattens onto white',
    file: 'alpha.png',
    options: { width: 300, format: 'jpeg' },
    format: 'jpeg',
    width: 300,
    height: 200,
    alpha: false,
    check: async (out) => near(await out.pixel(2, 2), WHITE),
  },
  {
    name: 'PNG with alpha to JPEG flattens onto the background',
    file: 'alpha.png',
    options: { width: 300, format: 'jpeg', background: '#0000ff' },
    format: 'jpeg',
    width: 300,
    height: 200,
    check: async (out) => near(await out.pixel(2, 2), BLUE, 20),
  },
  {
    name: 'an opaque background goes under a transparent image in WebP too',
    file: 'alpha.png',
    options: { width: 300, format: 'webp', background: '#00ff00' },
    format: 'webp',
    width: 300,
    height: 200,
    check: async (out) => near(await out.pixel(2, 2), GREEN, 20),
  },
  {
    name: 'scale-down never enlarges',
    file: 'alpha.png',
    options: { width: 1200 },
    format: 'webp',
    width: 600,
    height: 400,
  },
  {
    name: 'crop never enlarges (cuts unscaled)',
    file: 'alpha.png',
    options: { width: 800, height: 300, fit: 'crop' },
    format: 'webp',
    width: 600,
    height: 300,
  },
  {
    name: 'contain never enlarges (unlike Cloudflare: only pad may)',
    file: 'alpha.png',
    options: { width: 1200, fit: 'contain' },
    format: 'webp',
    width: 600,
    height: 400,
  },
  {
    name: 'cover never enlarges (cuts unscaled, as crop)',
    file: 'alpha.png',
    options: { width: 1200, height: 300, fit: 'cover' },
    format: 'webp',
    width: 600,
    height: 300,
  },
  {
    name: 'pad enlarges',
    file: 'alpha.png',
    options: { width: 1200, fit: 'pad' },
    format: 'webp',
    width: 1200,
    height: 800,
  },
  {
    name: 'no size keeps the size',
    file: 'alpha.png',
    options: { format: 'webp' },
    format: 'webp',
    width: 600,
    height: 400,
  },
  {
    name: 'original keeps PNG',
    file: 'alpha.png',
    options: { format: 'original' },
    format: 'png',
    width: 600,
    height: 400,
    alpha: true,
  },

  // Colour: 16-bit and CMYK come out 8-bit sRGB.
  ...(['png', 'original', 'webp'] as const).map((format): Row => ({
    name: `16-bit PNG to ${format} is 8-bit sRGB`,
    file: 'png16.png',
    options: { format },
    format: format === 'webp' ? 'webp' : 'png',
    width: 300,
    height: 200,
    check: (out) => {
      expect(out.meta.depth).toBe('uchar')
      expect(out.meta.space).toBe('srgb')
    },
  })),
  ...(['jpeg', 'webp'] as const).map((format): Row => ({
    name: `CMYK JPEG to ${format} is sRGB`,
    file: 'cmyk.jpg',
    options: { format, width: 150 },
    format,
    width: 150,
    height: 100,
    check: (out) => {
      expect(out.meta.space).toBe('srgb')
      expect(out.meta.channels).toBe(3)
      expect(out.meta.depth).toBe('uchar')
    },
  })),

  // EXIF orientation 6: stored 600x400, shown 400x600 with the red square top-left.
  {
    name: 'EXIF-rotated JPEG comes out upright',
    file: 'rotated.jpg',
    options: { format: 'jpeg' },
    format: 'jpeg',
    width: 400,
    height: 600,
    async check(out) {
      near(await out.pixel(20, 20), RED, 30)
      expect(out.meta.orientation).toBeUndefined()
    },
  },
  {
    name: 'EXIF-rotated JPEG resized upright',
    file: 'rotated.jpg',
    options: { width: 200 },
    format: 'webp',
    width: 200,
    height: 300,
  },
  {
    name: 'EXIF-rotated JPEG, then rotate 90 clockwise',
    file: 'rotated.jpg',
    options: { rotate: 90, format: 'png' },
    format: 'png',
    width: 600,
    height: 400,
    check: async (out) => near(await out.pixel(580, 20), RED, 30),
  },

  // Animation: kept for WebP (and GIF as original), first frame otherwise.
  {
    name: 'animated GIF to WebP stays animated',
    file: 'anim.gif',
    options: { width: 60 },
    format: 'webp',
    width: 60,
    height: 40,
    pages: 5,
  },
  {
    name: 'animated GIF as original stays an animated GIF',
    file: 'anim.gif',
    options: { width: 60, format: 'original' },
    format: 'gif',
    width: 60,
    height: 40,
    pages: 5,
  },
  {
    name: 'animated GIF to JPEG is its first frame',
    file: 'anim.gif',
    options: { width: 60, format: 'jpeg' },
    format: 'jpeg',
    width: 60,
    height: 40,
    pages: 1,
  },
  {
    name: 'animated GIF to AVIF is its first frame',
    file: 'anim.gif',
    options: { width: 60, format: 'avif' },
    format: 'avif',
    width: 60,
    height: 40,
    pages: 1,
  },
  {
    name: 'animated GIF covered stays animated',
    file: 'anim.gif',
    options: { width: 40, height: 40, fit: 'cover' },
    format: 'webp',
    width: 40,
    height: 40,
    pages: 5,
  },
  {
    name: 'animated GIF padded stays animated',
    file: 'anim.gif',
    options: { width: 100, height: 100, fit: 'pad' },
    format: 'webp',
    width: 100,
    height: 100,
    pages: 5,
  },
  {
    name: 'animated GIF rotated is its first frame',
    file: 'anim.gif',
    options: { rotate: 90 },
    format: 'webp',
    width: 80,
    height: 120,
    pages: 1,
  },
  {
    name: 'animated WebP stays animated',
    file: 'anim.webp',
    options: { width: 60 },
    format: 'webp',
    width: 60,
    height: 40,
    pages: 5,
  },
  {
    name: 'animated WebP as original stays animated',
    file: 'anim.webp',
    options: { format: 'original' },
    format: 'webp',
    width: 120,
    height: 80,
    pages: 5,
  },
  {
    name: 'animated WebP to PNG is its first frame',
    file: 'anim.webp',
    options: { format: 'png' },
    format: 'png',
    width: 120,
    height: 80,
    pages: 1,
  },

  // 1x1 and an 8000x400 panorama.
  {
    name: 'tiny: scale-down keeps 1x1',
    file: 'tiny.png',
    options: { width: 100 },
    format: 'webp',
    width: 1,
    height: 1,
  },
  {
    name: 'tiny: crop keeps 1x1',
    file: 'tiny.png',
    options: { width: 100, height: 100, fit: 'crop' },
    format: 'webp',
    width: 1,
    height: 1,
  },
  {
    name: 'tiny: contain keeps 1x1',
    file: 'tiny.png',
    options: { width: 100, fit: 'contain' },
    format: 'webp',
    width: 1,
    height: 1,
  },
  {
    name: 'tiny: cover keeps 1x1',
    file: 'tiny.png',
    options: { width: 50, height: 50, fit: 'cover' },
    format: 'webp',
    width: 1,
    height: 1,
  },
  {
    name: 'tiny: pad to a JPEG box',
    file: 'tiny.png',
    options: { width: 100, height: 50, fit: 'pad', format: 'jpeg' },
    format: 'jpeg',
    width: 100,
    height: 50,
  },
  {
    name: 'panorama by width',
    file: 'panorama.jpg',
    options: { width: 800 },
    format: 'webp',
    width: 800,
    height: 40,
  },
  {
    name: 'panorama by height',
    file: 'panorama.jpg',
    options: { height: 100 },
    format: 'webp',
    width: 2000,
    height: 100,
  },
  {
    name: 'panorama covered',
    file: 'panorama.jpg',
    options: { width: 400, height: 400, fit: 'cover' },
    format: 'webp',
    width: 400,
    height: 400,
  },
  {
    name: 'panorama cropped',
    file: 'panorama.jpg',
    options: { width: 400, height: 400, fit: 'crop', format: 'jpeg' },
    format: 'jpeg',
    width: 400,
    height: 400,
  },
  {
    name: 'panorama padded',
    file: 'panorama.jpg',
    options: { width: 400, height: 400, fit: 'pad', format: 'png' },
    format: 'png',
    width: 400,
    height: 400,
    alpha: true,
  },

  // TIFF is accepted; as `original` it becomes JPEG, or PNG when it has alpha.
  {
    name: 'TIFF as original becomes JPEG',
    file: 'photo.tiff',
    options: { format: 'original' },
    format: 'jpeg',
    width: 300,
    height: 200,
  },
  {
    name: 'TIFF with alpha as original becomes PNG',
    file: 'alpha.tiff',
    options: { format: 'original' },
    format: 'png',
    width: 300,
    height: 200,
    alpha: true,
  },

  // Metadata: stripped by default, only the copyright, or kept.
  ...(['jpeg', 'webp', 'png'] as const).flatMap((format): Row[] => [
    {
      name: `metadata stripped by default (${format})`,
      file: 'exif.jpg',
      options: { format },
      format,
      width: 200,
      height: 100,
      check: (out) => {
        expect(out.meta.exif).toBeUndefined()
        expect(out.meta.icc).toBeUndefined()
      },
    },
    {
      name: `metadata=copyright keeps only the copyright (${format})`,
      file: 'exif.jpg',
      options: { format, metadata: 'copyright' },
      format,
      width: 200,
      height: 100,
      check: (out) => {
        const exif = out.meta.exif?.toString('latin1') ?? ''
        expect(exif).toContain('Copyright 2026 vtta test')
        expect(exif).not.toContain('A. Painter')
      },
    },
    {
      name: `metadata=keep keeps EXIF (${format})`,
      file: 'exif.jpg',
      options: { format, metadata: 'keep' },
      format,
      width: 200,
      height: 100,
      check: (out) => {
        const exif = out.meta.exif?.toString('latin1') ?? ''
        expect(exif).toContain('Copyright 2026 vtta test')
        expect(exif).toContain('A. Painter')
      },
    },
  ]),
]

describe('image transforms', () => {
  it.each(rows)('$name', async (row) => {
    const out = await transform(row.file, row.options)
    const { meta, answer } = out
    expect(meta.format).toBe(row.format === 'avif' ? 'heif' : row.format)
    if (row.format === 'avif') expect(meta.compression).toBe('av1')
    expect(answer.contentType).toBe(`image/${row.format}`)
    expect([meta.width, meta.pageHeight ?? meta.height]).toEqual([row.width, row.height])
    expect([answer.width, answer.height]).toEqual([row.width, row.height])
    if (row.pages !== undefined) expect(meta.pages ?? 1).toBe(row.pages)
    if (row.alpha !== undefined) expect(meta.hasAlpha).toBe(row.alpha)
    await row.check?.(out)
  })

  it('a lower quality gives fewer bytes, per format', async () => {
    for (const format of ['jpeg', 'webp', 'avif'] as const) {
      const low = await transform('photo.jpg', { width: 600, format, quality: 30 })
      const high = await transform('photo.jpg', { width: 600, format, quality: 90 })
      expect(low.answer.body.length, format).toBeLessThan(high.answer.body.length * 0.8)
    }
    // PNG is lossless; a quality asks for a palette-quantised PNG.
    const lossless = await transform('photo.jpg', { width: 300, format: 'png' })
    const quantised = await transform('photo.jpg', { width: 300, format: 'png', quality: 50 })
    expect(quantised.answer.body.length).toBeLessThan(lossless.answer.body.length)
  })

  it('blur softens and sharpen crisps', async () => {
    const sharpness = async (options: Partial<ResolvedImageOptions>) =>
      (
        await sharp(
          (await transform('photo.jpg', { width: 400, format: 'png', ...options })).answer.body
        ).stats()
      ).sharpness
    const plain = await sharpness({})
    expect(await sharpness({ blur: 20 })).toBeLessThan(plain * 0.5)
    expect(await sharpness({ sharpen: 5 })).toBeGreaterThan(plain * 1.1)
  })

  it('sends large answers in several chunks and small ones in one', async () => {
    const large = await transform('photo.jpg', { width: 1600, format: 'png' })
    expect(large.answer.chunks).toBe(Math.ceil(large.answer.body.length / (64 * 1024)))
    expect(large.answer.chunks).toBeGreaterThan(1)
    const small = await transform('tiny.png', {})
    expect(small.answer.chunks).toBe(1)
  })
})
