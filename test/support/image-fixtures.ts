/**
 * Test images, generated with sharp (deterministic: seeded noise), for the image service's tests and
 * benchmark. Big ones take a moment: generate them once per file.
 */
import { createDeflate } from 'node:zlib'
import sharp from 'sharp'

/** A small fast PRNG, so fixtures are the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A smooth random RGB field: a coarse random grid upscaled with a cubic kernel. */
async function smoothField(width: number, height: number, cell: number, rand: () => number): Promise<Buffer> {
  const gw = Math.max(2, Math.round(width / cell))
  const gh = Math.max(2, Math.round(height / cell))
  const grid = Buffer.alloc(gw * gh * 3)
  for (let i = 0; i < grid.length; i++) grid[i] = Math.floor(rand() * 256)
  return sharp(grid, { raw: { width: gw, height: gh, channels: 3 } })
    .resize(width, height, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer()
}

/**
 * Raw RGB pixels that compress like a photograph: gradients, blobs and texture at several scales,
 * plus sensor-like noise (a 12 MP JPEG at q85 is a few MB, like the research's test photo).
 */
export async function photoLikePixels(width: number, height: number, seed = 1): Promise<Buffer> {
  const rand = random(seed)
  const [coarse, mid, fine] = [
    await smoothField(width, height, Math.max(width, height) / 6, rand),
    await smoothField(width, height, 48, rand),
    await smoothField(width, height, 6, rand),
  ]
  const out = Buffer.alloc(width * height * 3)
  let noise = seed * 2654435761
  for (let y = 0, i = 0; y < height; y++) {
    const gy = (y / height) * 60
    for (let x = 0; x < width; x++) {
      const gx = (x / width) * 60
      for (let c = 0; c < 3; c++, i++) {
        noise = (Math.imul(noise, 1103515245) + 12345) >>> 0
        const v = coarse[i]! * 0.55 + mid[i]! * 0.3 + fine[i]! * 0.15 + (c === 0 ? gx : c === 2 ? gy : 0) - 30
        out[i] = Math.max(0, Math.min(255, v + ((noise >>> 24) - 128) / 10))
      }
    }
  }
  return out
}

export async function photoLikeJpeg(width = 4000, height = 3000, seed = 1, quality = 85): Promise<Buffer> {
  return sharp(await photoLikePixels(width, height, seed), { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer()
}

/** Transparent all round, an opaque red disc in the middle with a soft half-transparent rim. */
export async function alphaPng(width = 600, height = 400): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 4)
  const [cx, cy, r] = [width / 2, height / 2, Math.min(width, height) / 3]
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const d = Math.hypot(x - cx, y - cy)
      const i = (y * width + x) * 4
      px[i] = 220
      px[i + 1] = 30
      px[i + 2] = 30
      px[i + 3] = d < r ? 255 : d < r + 20 ? 128 : 0
    }
  return sharp(px, { raw: { width, height, channels: 4 } })
    .png()
    .toBuffer()
}

export async function png16(width = 300, height = 200): Promise<Buffer> {
  const px = new Uint16Array(width * height * 3)
  for (let i = 0; i < px.length; i++) px[i] = (i * 977) % 65536
  return sharp(Buffer.from(px.buffer), { raw: { width, height, channels: 3 } })
    .toColourspace('rgb16')
    .png()
    .toBuffer()
}

export async function cmykJpeg(width = 300, height = 200): Promise<Buffer> {
  return sharp(await photoLikePixels(width, height, 7), { raw: { width, height, channels: 3 } })
    .toColourspace('cmyk')
    .jpeg()
    .toBuffer()
}

/**
 * Upright it is 400x600 (portrait) with a pure red square in its top-left corner; it is stored as a
 * 600x400 landscape with EXIF orientation 6 ("rotate 90° clockwise to display").
 */
export async function exifRotatedJpeg(): Promise<Buffer> {
  const upright = await sharp({ create: { width: 400, height: 600, channels: 3, background: '#3060a0' } })
    .composite([
      {
        input: { create: { width: 100, height: 100, channels: 3, background: '#ff0000' } },
        left: 0,
        top: 0,
      },
    ])
    .png()
    .toBuffer()
  const stored = await sharp(upright).rotate(270).png().toBuffer()
  return sharp(stored).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer()
}

function animationFrames(frames: number, width: number, height: number): Buffer {
  const px = Buffer.alloc(width * height * 4 * frames)
  for (let f = 0; f < frames; f++)
    for (let p = 0; p < width * height; p++) {
      const i = (f * width * height + p) * 4
      px[i] = (f * 60) % 256
      px[i + 1] = ((p % width) * 255) / width
      px[i + 2] = 120
      px[i + 3] = 255
    }
  return px
}

export async function animatedGif(frames = 5, width = 120, height = 80, delayMs = 100): Promise<Buffer> {
  return sharp(animationFrames(frames, width, height), {
    raw: { width, height: height * frames, channels: 4, pageHeight: height },
  })
    .gif({ delay: Array(frames).fill(delayMs), loop: 0 })
    .toBuffer()
}

export async function animatedWebp(frames = 5, width = 120, height = 80, delayMs = 100): Promise<Buffer> {
  return sharp(animationFrames(frames, width, height), {
    raw: { width, height: height * frames, channels: 4, pageHeight: height },
  })
    .webp({ delay: Array(frames).fill(delayMs), loop: 0 })
    .toBuffer()
}

export async function tinyPng(): Promise<Buffer> {
  return sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } })
    .png()
    .toBuffer()
}

export async function panoramaJpeg(width = 8000, height = 400): Promise<Buffer> {
  return photoLikeJpeg(width, height, 3)
}

/** A photo-like JPEG whose EXIF carries a copyright and other tags, for metadata=copyright/keep. */
export async function jpegWithExif(copyright = 'Copyright 2026 vtta test'): Promise<Buffer> {
  return sharp(await photoLikePixels(200, 100, 5), { raw: { width: 200, height: 100, channels: 3 } })
    .jpeg()
    .withExif({ IFD0: { Copyright: copyright, Artist: 'A. Painter', Software: 'fixture' } })
    .toBuffer()
}

/** Noise compresses to nothing: a PNG of it is about 3 bytes per pixel. */
export function noisePixels(width: number, height: number, seed = 9): Buffer {
  const rand = random(seed)
  const px = Buffer.alloc(width * height * 3)
  for (let i = 0; i < px.length; i++) px[i] = Math.floor(rand() * 256)
  return px
}

/**
 * A decompression bomb: a 1-bit greyscale PNG whose header says width x height, with a valid,
 * highly compressed all-zero image body (50000x50000 is about 300 KB).
 */
export async function pngBomb(width = 50_000, height = 50_000): Promise<Buffer> {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr[8] = 1 // bit depth
  ihdr[9] = 0 // greyscale
  const row = Buffer.alloc(1 + Math.ceil(width / 8)) // filter byte + bits
  const deflate = createDeflate({ level: 9 })
  const parts: Buffer[] = []
  deflate.on('data', (d: Buffer) => parts.push(d))
  const done = new Promise((resolve) => deflate.once('end', resolve))
  for (let y = 0; y < height; y++) if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r))
  deflate.end()
  await done
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', Buffer.concat(parts)),
    pngChunk('IEND', Buffer.alloc(0)),
  ])
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([length, body, crc])
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

/** The first half of an image: a truncated download. */
export function truncated(bytes: Buffer): Buffer {
  return bytes.subarray(0, Math.floor(bytes.length / 2))
}

export const htmlPage = Buffer.from(
  '<!DOCTYPE html>\n<html><head><title>Not found</title></head><body><h1>Sorry</h1>' +
    ' '.repeat(600) +
    '</body></html>\n'
)

export const svgWithScript = Buffer.from(
  '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">' +
    '<script>fetch("http://169.254.169.254/latest/meta-data")</script>' +
    '<image href="http://127.0.0.1/secret.png" width="100" height="100"/>' +
    '<rect width="100" height="100" fill="red"/></svg>\n'
)
