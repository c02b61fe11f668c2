/**
 * Module zips, read defensively and rewritten without recompression.
 *
 * Reading trusts nothing: the central directory (what extractors use) is parsed and checked —
 * entry count, declared sizes and compression ratios per entry and for the whole archive (zip
 * bombs), names (`../`, absolute paths, duplicates, also after case folding and Unicode NFC
 * normalisation), entry types (only regular files and folders: no symlinks, devices, fifos or
 * sockets), local headers that agree with it and do not overlap — and then every entry is
 * inflated as a stream: its running size may not pass its declared size nor the archive's
 * running total the limit, and its CRC is checked. Only the entry asked for (module.json, itself
 * capped) is held in memory; memory stays bounded whatever the entries' sizes.
 *
 * Rewriting copies every entry's compressed bytes unchanged and replaces only module.json
 * (deflated with fflate), then writes a fresh central directory: fast, and byte-for-byte faithful
 * to the author's files. ZIP64, multi-disk, encrypted and exotic-method archives are refused.
 */
import { errorMessage } from '#shared/error-message.ts'
import { crc32, createInflateRaw } from 'node:zlib'
import { deflateSync } from 'fflate'
import type { RejectionCode } from '#shared/releases.ts'

export interface ZipLimits {
  maxEntries: number
  /** Of all entries together, declared and as they actually inflate. */
  maxUncompressedBytes: number
  /**
   * Largest uncompressed/compressed ratio of an entry larger than `ratioFloorBytes`, and of the
   * whole archive (all entries against the zip's size) once it inflates past `ratioFloorBytes`.
   */
  maxRatio: number
  ratioFloorBytes: number
  /** Largest entry verifyEntries holds in memory (module.json); default 1 MiB. */
  maxKeptBytes?: number
}

const DEFAULT_MAX_KEPT_BYTES = 1024 * 1024
/** Inflated bytes per chunk: what one entry costs in memory while it is verified. */
const INFLATE_CHUNK_BYTES = 64 * 1024
/** How often a long entry reports progress (the work item's keep-alive). */
const PROGRESS_EVERY_BYTES = 16 * 1024 * 1024

export class ZipError extends Error {
  override name = 'ZipError'
  readonly code: Extract<
    RejectionCode,
    | 'zip_invalid'
    | 'zip_unsafe_path'
    | 'zip_unsafe_entry'
    | 'zip_bomb'
    | 'zip_manifest_missing'
    | 'manifest_too_large'
  >

  constructor(code: ZipError['code'], message: string) {
    super(message)
    this.code = code
  }
}

export interface ZipEntry {
  /** The name as stored, decoded. */
  name: string
  flags: number
  method: number
  dosTime: number
  dosDate: number
  crc: number
  compressedSize: number
  uncompressedSize: number
  versionMadeBy: number
  internalAttrs: number
  externalAttrs: number
  localHeaderOffset: number
  /** Where the compressed bytes start (after the local header). */
  dataOffset: number
}

const SIG_LOCAL = 0x04034b50
const SIG_CENTRAL = 0x02014b50
const SIG_END = 0x06054b50
const FLAG_ENCRYPTED = 0x1
const FLAG_UTF8 = 0x800

/** Unix file types in the high 16 bits of the external attributes (st_mode). */
const S_IFMT = 0o170000
const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const nonRegularTypes: Record<number, string> = {
  0o120000: 'a symbolic link',
  0o140000: 'a socket',
  0o060000: 'a block device',
  0o020000: 'a character device',
  0o010000: 'a fifo',
}

/**
 * Why an entry is not a plain file or folder, or null. Read whatever the host byte of
 * versionMadeBy says: extractors disagree on which hosts' modes they honour, so any file type but
 * regular or directory is refused.
 */
export function nonRegularReason(externalAttrs: number): string | null {
  const type = (externalAttrs >>> 16) & S_IFMT
  if (type === 0 || type === S_IFREG || type === S_IFDIR) return null
  return nonRegularTypes[type] ?? `file type 0o${type.toString(8)}`
}

/**
 * The name as a case-insensitive, normalising file system (macOS, Windows) sees it: two entries
 * with the same key would overwrite each other there, whichever an extractor writes last. Windows
 * also drops trailing dots and spaces from each part of a path (`module.json.` is `module.json`).
 */
export function foldedName(name: string): string {
  return name
    .replace(/\\/g, '/')
    .split('/')
    .map((part) => part.replace(/[. ]+$/, ''))
    .join('/')
    .normalize('NFC')
    .toUpperCase()
    .toLowerCase()
    .normalize('NFC')
}

function decodeName(bytes: Uint8Array, utf8: boolean): string {
  if (!utf8) return Buffer.from(bytes).toString('latin1')
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new ZipError('zip_invalid', 'an entry name is not valid UTF-8')
  }
}

/** Why a name may not be extracted anywhere, or null when it is safe. */
export function unsafePathReason(name: string): string | null {
  const path = name.replace(/\\/g, '/')
  if (path.length === 0) return 'an empty name'
  if (path.length > 1024) return 'a name longer than 1024 characters'
  if (path.includes('\0')) return 'a NUL character'
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'an absolute path'
  if (path.split('/').includes('..')) return 'a "../" path'
  return null
}

function findEnd(buf: Buffer): number {
  const min = Math.max(0, buf.length - 22 - 0xffff)
  for (let p = buf.length - 22; p >= min; p--) {
    if (buf.readUInt32LE(p) === SIG_END && p + 22 + buf.readUInt16LE(p + 20) === buf.length) return p
  }
  throw new ZipError('zip_invalid', 'not a zip archive (no end of central directory)')
}

/** Parses and checks the central directory; nothing is inflated yet. */
export function readZip(bytes: Uint8Array, limits: ZipLimits): ZipEntry[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buf.length < 22) throw new ZipError('zip_invalid', 'not a zip archive (too short)')
  const end = findEnd(buf)
  const disk = buf.readUInt16LE(end + 4)
  const cdDisk = buf.readUInt16LE(end + 6)
  const onDisk = buf.readUInt16LE(end + 8)
  const count = buf.readUInt16LE(end + 10)
  const cdSize = buf.readUInt32LE(end + 12)
  const cdOffset = buf.readUInt32LE(end + 16)
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff)
    throw new ZipError('zip_invalid', 'ZIP64 archives are not supported')
  if (disk !== 0 || cdDisk !== 0 || onDisk !== count)
    throw new ZipError('zip_invalid', 'multi-disk archives are not supported')
  if (count > limits.maxEntries)
    throw new ZipError('zip_bomb', `${count} entries, more than the limit of ${limits.maxEntries}`)
  if (cdOffset + cdSize !== end)
    throw new ZipError('zip_invalid', 'the central directory is not where the archive says')

  const entries: ZipEntry[] = []
  const seen = new Set<string>()
  const folded = new Map<string, string>()
  let declaredTotal = 0
  let p = cdOffset
  for (let i = 0; i < count; i++) {
    if (p + 46 > end || buf.readUInt32LE(p) !== SIG_CENTRAL)
      throw new ZipError('zip_invalid', `central directory entry ${i} is damaged`)
    const nameLength = buf.readUInt16LE(p + 28)
    const extraLength = buf.readUInt16LE(p + 30)
    const commentLength = buf.readUInt16LE(p + 32)
    const next = p + 46 + nameLength + extraLength + commentLength
    if (next > end) throw new ZipError('zip_invalid', `central directory entry ${i} is damaged`)
    const flags = buf.readUInt16LE(p + 8)
    const centralName = buf.subarray(p + 46, p + 46 + nameLength)
    const entry: ZipEntry = {
      name: decodeName(centralName, (flags & FLAG_UTF8) !== 0),
      flags,
      method: buf.readUInt16LE(p + 10),
      dosTime: buf.readUInt16LE(p + 12),
      dosDate: buf.readUInt16LE(p + 14),
      crc: buf.readUInt32LE(p + 16),
      compressedSize: buf.readUInt32LE(p + 20),
      uncompressedSize: buf.readUInt32LE(p + 24),
      versionMadeBy: buf.readUInt16LE(p + 4),
      internalAttrs: buf.readUInt16LE(p + 36),
      externalAttrs: buf.readUInt32LE(p + 38),
      localHeaderOffset: buf.readUInt32LE(p + 42),
      dataOffset: 0,
    }
    p = next

    const unsafe = unsafePathReason(entry.name)
    if (unsafe) throw new ZipError('zip_unsafe_path', `entry "${entry.name.slice(0, 200)}" has ${unsafe}`)
    const normalised = entry.name.replace(/\\/g, '/')
    if (seen.has(normalised)) throw new ZipError('zip_invalid', `entry "${entry.name}" appears twice`)
    seen.add(normalised)
    const key = foldedName(entry.name)
    const clash = folded.get(key)
    if (clash !== undefined)
      throw new ZipError(
        'zip_unsafe_path',
        `entries "${clash.slice(0, 200)}" and "${entry.name.slice(0, 200)}" are the same file on a case-insensitive or Unicode-normalising file system`
      )
    folded.set(key, entry.name)
    const nonRegular = nonRegularReason(entry.externalAttrs)
    if (nonRegular)
      throw new ZipError(
        'zip_unsafe_entry',
        `entry "${entry.name.slice(0, 200)}" is ${nonRegular}, not a regular file or folder`
      )
    if (flags & FLAG_ENCRYPTED) throw new ZipError('zip_invalid', `entry "${entry.name}" is encrypted`)
    if (entry.method !== 0 && entry.method !== 8)
      throw new ZipError('zip_invalid', `entry "${entry.name}" uses compression method ${entry.method}`)
    if (entry.method === 0 && entry.compressedSize !== entry.uncompressedSize)
      throw new ZipError('zip_invalid', `stored entry "${entry.name}" has mismatched sizes`)
    declaredTotal += entry.uncompressedSize
    if (declaredTotal > limits.maxUncompressedBytes)
      throw new ZipError(
        'zip_bomb',
        `the archive inflates to more than the limit of ${limits.maxUncompressedBytes} bytes`
      )
    if (
      entry.uncompressedSize > limits.ratioFloorBytes &&
      entry.uncompressedSize / Math.max(1, entry.compressedSize) > limits.maxRatio
    )
      throw new ZipError(
        'zip_bomb',
        `entry "${entry.name}" would inflate ${Math.round(entry.uncompressedSize / Math.max(1, entry.compressedSize))} times (limit ${limits.maxRatio})`
      )

    const l = entry.localHeaderOffset
    if (l + 30 > cdOffset || buf.readUInt32LE(l) !== SIG_LOCAL)
      throw new ZipError('zip_invalid', `entry "${entry.name}" has no local header where the directory says`)
    const localNameLength = buf.readUInt16LE(l + 26)
    if (!buf.subarray(l + 30, l + 30 + localNameLength).equals(centralName))
      throw new ZipError('zip_invalid', `entry "${entry.name}" has a different name in its local header`)
    entry.dataOffset = l + 30 + localNameLength + buf.readUInt16LE(l + 28)
    if (entry.dataOffset + entry.compressedSize > cdOffset)
      throw new ZipError('zip_invalid', `entry "${entry.name}" runs past the end of the data`)
    entries.push(entry)
  }
  // Many entries each under the floor still add up: the archive as a whole has the same ratio cap.
  if (declaredTotal > limits.ratioFloorBytes && declaredTotal / buf.length > limits.maxRatio)
    throw new ZipError(
      'zip_bomb',
      `the archive would inflate ${Math.round(declaredTotal / buf.length)} times (limit ${limits.maxRatio})`
    )
  // Overlapping entries are the "non-recursive" zip bomb: one compressed body counted many times.
  const byOffset = [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset)
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!
    if (prev.dataOffset + prev.compressedSize > byOffset[i]!.localHeaderOffset)
      throw new ZipError('zip_bomb', `entries "${prev.name}" and "${byOffset[i]!.name}" overlap`)
  }
  return entries
}

/** The running state of one verification pass over an archive. */
interface Budget {
  limit: number
  /** Bytes the archive may still inflate to. */
  remaining: number
  /** Bytes inflated since the last progress report. */
  sinceProgress: number
  onProgress: (() => void) | undefined
}

/**
 * Inflates one entry as a stream, chunk by chunk: its running size may not pass its declared size
 * (a lying header) nor the archive's remaining budget, and its CRC must match. Returns the bytes
 * only when `keep` (they are otherwise dropped chunk by chunk). Since the inflated size never
 * passes the declared one, readZip's ratio checks on declared sizes hold for the actual bytes too.
 */
async function inflateEntry(
  src: Buffer,
  entry: ZipEntry,
  budget: Budget,
  keep: boolean
): Promise<Buffer | null> {
  const raw = src.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize)
  const kept: Buffer[] = []
  let size = 0
  let crc = 0
  const take = (chunk: Buffer) => {
    size += chunk.length
    if (size > entry.uncompressedSize)
      throw new ZipError(
        'zip_bomb',
        `entry "${entry.name}" inflates beyond its declared ${entry.uncompressedSize} bytes`
      )
    budget.remaining -= chunk.length
    if (budget.remaining < 0)
      throw new ZipError('zip_bomb', `the archive inflates to more than the limit of ${budget.limit} bytes`)
    crc = crc32(chunk, crc)
    if (keep) kept.push(chunk)
    budget.sinceProgress += chunk.length
    if (budget.sinceProgress >= PROGRESS_EVERY_BYTES) {
      budget.sinceProgress = 0
      budget.onProgress?.()
    }
  }
  if (entry.method === 0) {
    for (let p = 0; p < raw.length; p += INFLATE_CHUNK_BYTES) take(raw.subarray(p, p + INFLATE_CHUNK_BYTES))
  } else {
    // zlib's stream honours backpressure within one input buffer: at most a chunk or two in flight.
    const inflater = createInflateRaw({ chunkSize: INFLATE_CHUNK_BYTES })
    inflater.end(raw)
    try {
      for await (const chunk of inflater) take(chunk as Buffer)
    } catch (err) {
      if (err instanceof ZipError) throw err
      throw new ZipError('zip_invalid', `entry "${entry.name}" does not inflate: ${errorMessage(err)}`)
    } finally {
      inflater.destroy()
    }
  }
  if (size !== entry.uncompressedSize)
    throw new ZipError(
      'zip_invalid',
      `entry "${entry.name}" is ${size} bytes, not the declared ${entry.uncompressedSize}`
    )
  if (crc >>> 0 !== entry.crc) throw new ZipError('zip_invalid', `entry "${entry.name}" fails its CRC check`)
  return keep ? Buffer.concat(kept, size) : null
}

/**
 * Inflates every entry once as a stream (bounded as above), holding only `keep`'s bytes, which
 * may declare no more than `limits.maxKeptBytes` (a module.json larger than that is refused
 * before anything is inflated).
 */
export async function verifyEntries(
  bytes: Uint8Array,
  entries: readonly ZipEntry[],
  keep: ZipEntry,
  limits: ZipLimits,
  onProgress?: () => void
): Promise<Buffer> {
  const maxKept = limits.maxKeptBytes ?? DEFAULT_MAX_KEPT_BYTES
  if (keep.uncompressedSize > maxKept)
    throw new ZipError(
      'manifest_too_large',
      `entry "${keep.name}" is ${keep.uncompressedSize} bytes, more than the limit of ${maxKept}`
    )
  const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const budget: Budget = {
    limit: limits.maxUncompressedBytes,
    remaining: limits.maxUncompressedBytes,
    sinceProgress: 0,
    onProgress,
  }
  let kept: Buffer | null = null
  for (const entry of entries) {
    const data = await inflateEntry(src, entry, budget, entry === keep)
    if (entry === keep) kept = data
    onProgress?.()
  }
  return kept!
}

/** module.json at the root, or in the archive's one top-level folder (macOS' `__MACOSX/` ignored). */
export function findManifestEntry(entries: readonly ZipEntry[]): ZipEntry {
  const path = (e: ZipEntry) => e.name.replace(/\\/g, '/')
  const root = entries.find((e) => path(e) === 'module.json')
  if (root) return root
  const content = entries.filter((e) => !path(e).startsWith('__MACOSX/'))
  const tops = new Set(content.map((e) => path(e).split('/')[0]))
  const [top] = tops
  if (tops.size === 1 && content.every((e) => path(e).includes('/'))) {
    const nested = content.find((e) => path(e) === `${top}/module.json`)
    if (nested) return nested
  }
  throw new ZipError(
    'zip_manifest_missing',
    'the zip has no module.json at its root or in its one top-level folder'
  )
}

/**
 * A new archive: every entry's compressed bytes copied unchanged, `replace` given new content
 * (deflated with fflate), local headers carrying sizes (no data descriptors), extra fields dropped.
 */
export function rewriteZip(
  bytes: Uint8Array,
  entries: readonly ZipEntry[],
  replace: ZipEntry,
  content: Uint8Array
): Buffer {
  const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const parts: Buffer[] = []
  const central: Buffer[] = []
  let offset = 0
  for (const entry of entries) {
    const name = Buffer.from(entry.name, (entry.flags & FLAG_UTF8) !== 0 ? 'utf8' : 'latin1')
    const replaced = entry === replace
    const data = replaced
      ? Buffer.from(deflateSync(content, { level: 9 }))
      : src.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize)
    const method = replaced ? 8 : entry.method
    const crc = replaced ? crc32(content) : entry.crc
    const size = replaced ? content.byteLength : entry.uncompressedSize
    // Keep only the UTF-8 and deflate-option bits: no data descriptor, the sizes precede the data.
    const flags = (entry.flags & FLAG_UTF8) | (replaced || method !== 8 ? 0 : entry.flags & 0x6)

    const local = Buffer.alloc(30)
    local.writeUInt32LE(SIG_LOCAL, 0)
    local.writeUInt16LE(20, 4)
    local.writeUInt16LE(flags, 6)
    local.writeUInt16LE(method, 8)
    local.writeUInt16LE(entry.dosTime, 10)
    local.writeUInt16LE(entry.dosDate, 12)
    local.writeUInt32LE(crc, 14)
    local.writeUInt32LE(data.length, 18)
    local.writeUInt32LE(size, 22)
    local.writeUInt16LE(name.length, 26)
    local.writeUInt16LE(0, 28)
    parts.push(local, name, data)

    const cd = Buffer.alloc(46)
    cd.writeUInt32LE(SIG_CENTRAL, 0)
    cd.writeUInt16LE(entry.versionMadeBy, 4)
    cd.writeUInt16LE(20, 6)
    cd.writeUInt16LE(flags, 8)
    cd.writeUInt16LE(method, 10)
    cd.writeUInt16LE(entry.dosTime, 12)
    cd.writeUInt16LE(entry.dosDate, 14)
    cd.writeUInt32LE(crc, 16)
    cd.writeUInt32LE(data.length, 20)
    cd.writeUInt32LE(size, 24)
    cd.writeUInt16LE(name.length, 28)
    cd.writeUInt16LE(0, 30)
    cd.writeUInt16LE(0, 32)
    cd.writeUInt16LE(0, 34)
    cd.writeUInt16LE(entry.internalAttrs, 36)
    cd.writeUInt32LE(entry.externalAttrs, 38)
    cd.writeUInt32LE(offset, 42)
    central.push(cd, name)
    offset += 30 + name.length + data.length
  }
  const cdBytes = Buffer.concat(central)
  const eocd = Buffer.alloc(22)
  eocd.writeUInt32LE(SIG_END, 0)
  eocd.writeUInt16LE(entries.length, 8)
  eocd.writeUInt16LE(entries.length, 10)
  eocd.writeUInt32LE(cdBytes.length, 12)
  eocd.writeUInt32LE(offset, 16)
  if (offset > 0xfffffffe) throw new ZipError('zip_invalid', 'the rewritten archive would need ZIP64')
  return Buffer.concat([...parts, cdBytes, eocd])
}
