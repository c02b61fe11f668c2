import { describe, expect, it } from 'vitest'
import sharp from 'sharp'
import { sniffImageType } from '../../../backend/images/sniff-image-type.ts'
import { exifCopyright } from '../../../backend/images/exif-copyright.ts'
import * as fixtures from '../../support/image-fixtures.ts'

const image = (format: 'jpeg' | 'png' | 'gif' | 'webp' | 'avif' | 'tiff') =>
  sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } })
    .toFormat(format)
    .toBuffer()

describe('sniffing the source type from its bytes', () => {
  it.each(['jpeg', 'png', 'gif', 'webp', 'avif', 'tiff'] as const)('recognises %s', async (format) => {
    expect(sniffImageType(await image(format))).toEqual({ ok: true, format })
  })

  it.each([
    ['HTML', fixtures.htmlPage, /HTML/],
    ['SVG', fixtures.svgWithScript, /SVG/],
    ['SVG without a declaration', Buffer.from('\ufeff  <svg xmlns="http://www.w3.org/2000/svg"/>'), /SVG/],
    ['HEIC', Buffer.from('\0\0\0\x18ftypheic\0\0\0\0mif1heic', 'latin1'), /HEIC/],
    ['a PDF', Buffer.from('%PDF-1.7\n'), /not an image/],
    ['a BMP', Buffer.from('BM\0\0\0\0'), /not an image/],
    ['nothing', Buffer.alloc(0), /not an image/],
    ['JSON', Buffer.from('{"error":"nope"}'), /not an image/],
  ])('refuses %s', (_name, bytes, message) => {
    const sniffed = sniffImageType(bytes)
    expect(sniffed.ok).toBe(false)
    if (!sniffed.ok) expect(sniffed.message).toMatch(message)
  })
})

describe('reading the EXIF copyright', () => {
  it('finds it among other tags, in either byte order', async () => {
    const meta = await sharp(await fixtures.jpegWithExif('Copyright 2026 Someone')).metadata()
    expect(exifCopyright(meta.exif)).toBe('Copyright 2026 Someone')
  })

  it('returns null for no EXIF, no copyright or a malformed block', async () => {
    expect(exifCopyright(undefined)).toBeNull()
    const meta = await sharp(await fixtures.photoLikeJpeg(10, 10))
      .withExif({ IFD0: { Artist: 'x' } })
      .jpeg()
      .toBuffer()
    expect(exifCopyright((await sharp(meta).metadata()).exif)).toBeNull()
    expect(exifCopyright(Buffer.from('Exif\0\0II*\0\xff\xff\xff\x7f', 'latin1'))).toBeNull()
    expect(
      exifCopyright(
        Buffer.from('Exif\0\0MM\0*\0\0\0\x08\0\x01\x82\x98\0\x02\xff\xff\xff\xff\0\0\0\0', 'latin1')
      )
    ).toBeNull()
  })
})
