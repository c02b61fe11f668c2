/**
 * What a source really is, from its first bytes; the origin's Content-Type is never trusted.
 * Only the formats we decode pass. SVG is refused (not rasterised): it is a document that can
 * script, reference other URLs and expand entities, and D&D Beyond art does not need it.
 */
export const sourceFormats = ['jpeg', 'png', 'gif', 'webp', 'avif', 'tiff'] as const
export type SourceFormat = (typeof sourceFormats)[number]

export type Sniffed = { ok: true; format: SourceFormat } | { ok: false; message: string }

/** How many leading bytes sniffing wants (fewer is fine at the end of a short source). */
export const SNIFF_BYTES = 512

const ascii = (bytes: Uint8Array, start: number, end: number) =>
  start >= bytes.length
    ? ''
    : Buffer.from(bytes.subarray(start, Math.min(end, bytes.length))).toString('latin1')
const startsWith = (bytes: Uint8Array, prefix: number[], at = 0) =>
  bytes.length >= at + prefix.length && prefix.every((b, i) => bytes[at + i] === b)

export function sniffImageType(head: Uint8Array): Sniffed {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return { ok: true, format: 'jpeg' }
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { ok: true, format: 'png' }
  const six = ascii(head, 0, 6)
  if (six === 'GIF87a' || six === 'GIF89a') return { ok: true, format: 'gif' }
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return { ok: true, format: 'webp' }
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a]))
    return { ok: true, format: 'tiff' }
  if (ascii(head, 4, 8) === 'ftyp') {
    // ISO-BMFF: the major brand, then compatible brands up to the end of the ftyp box.
    const boxEnd = Math.min(head.length, new DataView(head.buffer, head.byteOffset, head.length).getUint32(0))
    const brands = [ascii(head, 8, 12)]
    for (let at = 16; at + 4 <= boxEnd; at += 4) brands.push(ascii(head, at, at + 4))
    if (brands.some((b) => b === 'avif' || b === 'avis')) return { ok: true, format: 'avif' }
    if (brands.some((b) => ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(b)))
      return { ok: false, message: 'the source is HEIC/HEIF, which is not supported' }
  }
  const text = ascii(head, 0, SNIFF_BYTES)
    .replace(/^\xef\xbb\xbf/, '')
    .trimStart()
    .toLowerCase()
  if (/<svg[\s>]/.test(text) || (text.startsWith('<?xml') && text.includes('<svg')))
    return { ok: false, message: 'SVG sources are not accepted' }
  if (text.startsWith('<!doctype html') || text.startsWith('<html') || /<(head|body)[\s>]/.test(text))
    return { ok: false, message: 'the source is an HTML page, not an image' }
  return {
    ok: false,
    message: 'the source is not an image in a supported format (JPEG, PNG, GIF, WebP, AVIF, TIFF)',
  }
}
