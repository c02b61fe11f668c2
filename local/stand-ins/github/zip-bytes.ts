/**
 * A lying zip, written byte by byte: fflate (like every zip writer) records each entry's true
 * uncompressed size, so the `bomb-lying` release, whose headers claim less than the entry inflates
 * to, is made by rewriting that field afterwards. The offsets are those of PKWARE's APPNOTE.TXT
 * (section 4.3.7 and 4.3.12), all little-endian:
 *
 *   local file header          signature 0x04034b50, uncompressed size at +22, file name at +30
 *   central directory header   signature 0x02014b50, uncompressed size at +24, file name at +46
 *
 * Both copies are rewritten, as a reader may trust either.
 */
const LOCAL_HEADER = { signature: 0x04034b50, size: 22, name: 30 }
const CENTRAL_HEADER = { signature: 0x02014b50, size: 24, name: 46 }

/** Rewrites an entry's declared uncompressed size in its local and central headers: a lying zip. */
export function declareSize(zip: Uint8Array, name: string, size: number): void {
  const buf = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength)
  const target = Buffer.from(name)
  const names = (p: number, at: number) => buf.subarray(p + at, p + at + target.length).equals(target)
  // A scan for the signatures followed by the entry's name: a coincidence inside compressed data
  // would also need the name right after it, which the fixtures' small zips never have.
  for (let p = 0; p < buf.length - CENTRAL_HEADER.name; p++) {
    const signature = buf.readUInt32LE(p)
    if (signature === LOCAL_HEADER.signature && names(p, LOCAL_HEADER.name))
      buf.writeUInt32LE(size, p + LOCAL_HEADER.size)
    if (signature === CENTRAL_HEADER.signature && names(p, CENTRAL_HEADER.name))
      buf.writeUInt32LE(size, p + CENTRAL_HEADER.size)
  }
}
