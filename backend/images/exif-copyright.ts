/**
 * Reads the EXIF Copyright tag (IFD0, 0x8298) from the raw EXIF block sharp's metadata() returns,
 * for `metadata=copyright`: sharp can write chosen EXIF tags (withExif) but not keep one tag of the
 * input and drop the rest, so we read that one tag ourselves. Defensive: any malformed block yields null.
 */
const COPYRIGHT_TAG = 0x8298
const ASCII = 2
const MAX_LENGTH = 1024

export function exifCopyright(exif: Buffer | undefined): string | null {
  if (!exif) return null
  // sharp hands over the APP1 payload, which starts with "Exif\0\0" before the TIFF header.
  const tiff = exif.subarray(0, 6).toString('latin1') === 'Exif\0\0' ? exif.subarray(6) : exif
  if (tiff.length < 8) return null
  const order = tiff.subarray(0, 2).toString('latin1')
  if (order !== 'II' && order !== 'MM') return null
  const little = order === 'II'
  const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at))
  const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at))
  try {
    const ifd0 = u32(4)
    const entries = u16(ifd0)
    for (let i = 0; i < entries; i++) {
      const entry = ifd0 + 2 + i * 12
      if (u16(entry) !== COPYRIGHT_TAG || u16(entry + 2) !== ASCII) continue
      const count = u32(entry + 4)
      const start = count <= 4 ? entry + 8 : u32(entry + 8)
      if (count === 0 || start + count > tiff.length) return null
      // NUL-terminated; EXIF allows "photographer\0editor": keep both, joined.
      const text = decode(tiff.subarray(start, start + Math.min(count, MAX_LENGTH)))
        .split('\0')
        .map((part) => part.replace(/[\u0000-\u001f\u007f]/g, '').trim())
        .filter(Boolean)
        .join(' / ')
      return text || null
    }
  } catch {
    return null // offsets past the end
  }
  return null
}

/** EXIF says ASCII; cameras and editors write UTF-8 (©) or Latin-1. */
function decode(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return bytes.toString('latin1')
  }
}
