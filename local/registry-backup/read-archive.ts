/**
 * Reads a backup file member by member, streaming (gunzip → tar), and refuses what format.ts does
 * not allow before handing a member's bytes to anyone: a type other than a plain file, an unknown
 * or unsafe name (`..`, absolute, ...), a name seen twice, a member larger than its kind's bound,
 * more members than the format allows, anything after SHA256SUMS. A truncated or corrupted file fails here with the file's name in the
 * message (gzip's CRC and length, tar's headers). An error thrown by the caller's `visit` passes
 * through unchanged (it is the caller's, not the file's).
 *
 * The archive is read from an open file handle when one is given, from the start each time and
 * never closed here: a restore reads the same open file in every pass, so a file renamed over the
 * path meanwhile is never read.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { createGunzip } from 'node:zlib'
import tar from 'tar-stream'
import { maxMembers, memberKind, memberLimit, members, type MemberKind } from './format.ts'

export class ArchiveError extends Error {
  override name = 'ArchiveError'
}

export interface Member {
  name: string
  kind: MemberKind
  size: number
  mtime: Date | undefined
  /** The member's bytes; must be consumed (or skipped with `skip`) before the next member. */
  chunks: AsyncIterable<Uint8Array>
}

export interface MemberDigest {
  name: string
  kind: MemberKind
  size: number
  sha256: string
}

/**
 * Calls `visit` for every member in archive order; `visit` may read `chunks` or leave them (they are
 * then read and hashed here). Returns every member's size and SHA-256 as actually read.
 */
export async function readArchive(
  file: string,
  visit: (member: Member) => Promise<void>,
  handle?: FileHandle
): Promise<MemberDigest[]> {
  const extract = tar.extract()
  const gunzip = createGunzip()
  const source = handle ? handle.createReadStream({ start: 0, autoClose: false }) : createReadStream(file)
  // Any failure upstream (unreadable file, bad gzip, early end) ends the extraction with it.
  const fail = (err: Error) => extract.destroy(err)
  source.on('error', fail)
  gunzip.on('error', (err) => fail(new ArchiveError(`${file}: not a complete gzip file (${err.message})`)))
  source.pipe(gunzip).pipe(extract)
  const seen = new Set<string>()
  const digests: MemberDigest[] = []
  let afterSums = false
  let visitFailed: unknown = undefined
  try {
    for await (const entry of extract) {
      const { name, type, size = 0, mtime } = entry.header
      if (afterSums) throw new ArchiveError(`${file}: member ${name} after ${members.sums}`)
      if (type !== 'file')
        throw new ArchiveError(`${file}: member ${JSON.stringify(name)} is a ${type ?? 'link'}, not a file`)
      const kind = memberKind(name)
      if (!kind) throw new ArchiveError(`${file}: unexpected or unsafe member name ${JSON.stringify(name)}`)
      if (seen.has(name)) throw new ArchiveError(`${file}: member ${name} appears twice`)
      seen.add(name)
      if (seen.size > maxMembers) throw new ArchiveError(`${file}: more than ${maxMembers} members`)
      if (size > memberLimit(kind))
        throw new ArchiveError(
          `${file}: member ${name} is ${size} bytes, over the ${memberLimit(kind)} allowed`
        )
      if (kind === 'sums') afterSums = true
      const hash = createHash('sha256')
      let read = 0
      let consumed = false
      const chunks = {
        async *[Symbol.asyncIterator]() {
          consumed = true
          const iterator = (entry as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
          for (;;) {
            let next: IteratorResult<Buffer>
            try {
              next = await iterator.next()
            } catch (err) {
              // The file failed under the caller's read: its error, never mistaken for the caller's.
              if (err instanceof ArchiveError) throw err
              throw new ArchiveError(
                `${file}: unreadable (${err instanceof Error ? err.message : String(err)})`
              )
            }
            if (next.done) break
            const chunk = next.value
            read += chunk.length
            // tar's header says the size; never trust more bytes than that.
            if (read > size) throw new ArchiveError(`${file}: member ${name} is longer than its header says`)
            hash.update(chunk)
            yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)
          }
        },
      }
      try {
        await visit({ name, kind, size, mtime, chunks })
      } catch (err) {
        // The file's own failures are ArchiveErrors (the chunks above): anything else is the caller's.
        if (!(err instanceof ArchiveError)) visitFailed = err
        throw err
      }
      if (!consumed) for await (const chunk of chunks) void chunk
      if (read !== size)
        throw new ArchiveError(`${file}: member ${name} is truncated (${read} of ${size} bytes)`)
      digests.push({ name, kind, size, sha256: hash.digest('hex') })
    }
  } catch (err) {
    source.destroy()
    if (err instanceof ArchiveError || (visitFailed !== undefined && err === visitFailed)) throw err
    throw new ArchiveError(`${file}: unreadable (${err instanceof Error ? err.message : String(err)})`)
  }
  if (!afterSums) throw new ArchiveError(`${file}: no ${members.sums} at the end (truncated?)`)
  return digests
}

/** A small member's whole content (index files); the reader already bounded its size. */
export async function readAll(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const chunk of chunks) parts.push(chunk)
  return Buffer.concat(parts)
}
