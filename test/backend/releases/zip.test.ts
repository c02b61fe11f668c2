import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { crc32, createDeflateRaw } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { strFromU8, strToU8, unzipSync, zipSync, type Zippable } from 'fflate'
import {
  findManifestEntry,
  readZip,
  rewriteZip,
  unsafePathReason,
  verifyEntries,
  ZipError,
  type ZipEntry,
  type ZipLimits,
} from '../../../backend/releases/zip.ts'
import { releaseSpecSchema, releaseZip } from '../../../local/stand-ins/github/index.ts'

const limits: ZipLimits = {
  maxEntries: 100,
  maxUncompressedBytes: 64 * 1024 * 1024,
  maxRatio: 200,
  ratioFloorBytes: 1024 * 1024,
}
const fixtureZip = readFileSync(
  join(import.meta.dirname, '..', '..', 'fixtures', 'foundry', 'forgevtt-test', 'test-module.2.0.1.zip')
)

const zip = (files: Record<string, string | Uint8Array>) => {
  const tree: Zippable = {}
  for (const [name, data] of Object.entries(files))
    tree[name] = typeof data === 'string' ? strToU8(data) : data
  return zipSync(tree, { level: 6 })
}

/** The rejection code reading (and verifying) a zip ends in, or 'ok'. */
async function verdict(bytes: Uint8Array, l = limits): Promise<string> {
  try {
    const entries = readZip(bytes, l)
    await verifyEntries(bytes, entries, findManifestEntry(entries), l)
    return 'ok'
  } catch (err) {
    if (err instanceof ZipError) return `${err.code}: ${err.message}`
    throw err
  }
}

const MiB = 1024 * 1024

/**
 * A zip with a module.json and one entry of `size` zero bytes declaring `declared` bytes, deflated
 * as a stream so that the test itself never holds the inflated bytes; assembled with rewriteZip.
 */
async function zerosZip(size: number, declared = size): Promise<Buffer> {
  const deflater = createDeflateRaw({ level: 1 })
  const compressed: Buffer[] = []
  deflater.on('data', (chunk: Buffer) => compressed.push(chunk))
  const zeros = Buffer.alloc(MiB)
  let crc = 0
  for (let left = size; left > 0; left -= MiB) {
    const chunk = zeros.subarray(0, Math.min(MiB, left))
    crc = crc32(chunk, crc)
    if (!deflater.write(chunk)) await new Promise((resolve) => deflater.once('drain', resolve))
  }
  const ended = new Promise((resolve) => deflater.once('end', resolve))
  deflater.end()
  await ended
  const data = Buffer.concat(compressed)
  const entry = (name: string, fields: Partial<ZipEntry>): ZipEntry => ({
    name,
    flags: 0,
    method: 8,
    dosTime: 0,
    dosDate: 0x21,
    crc: 0,
    compressedSize: 0,
    uncompressedSize: 0,
    versionMadeBy: 20,
    internalAttrs: 0,
    externalAttrs: 0,
    localHeaderOffset: 0,
    dataOffset: 0,
    ...fields,
  })
  const manifest = entry('module.json', {})
  const big = entry('assets/zeros.bin', {
    crc,
    compressedSize: data.length,
    uncompressedSize: declared,
  })
  return rewriteZip(data, [manifest, big], manifest, strToU8('{"id":"zeros"}'))
}

/**
 * How far memory (V8's heap and the Buffers outside it) rises above where it was while `work`
 * runs, sampled every 2 ms. Not RSS: memory freed by an earlier test and not yet returned to the
 * system would hide a new allocation.
 */
async function memoryGrowth(work: () => Promise<unknown>): Promise<number> {
  const used = () => {
    const m = process.memoryUsage()
    return m.heapUsed + m.external
  }
  const base = used()
  let peak = base
  const sample = () => (peak = Math.max(peak, used()))
  const timer = setInterval(sample, 2)
  try {
    await work()
  } finally {
    clearInterval(timer)
    sample()
  }
  return peak - base
}

const spec = (zipKind: string) =>
  releaseSpecSchema.parse({
    fixture: 'test-module',
    owner: 'o',
    repo: 'r',
    repositoryId: 1,
    releaseId: 2,
    tag: 'v1.0.0',
    version: '1.0.0',
    prerelease: false,
    notes: '',
    zip: zipKind,
  })

describe('reading module zips', () => {
  it("accepts ForgeVTT's real install zip (module.json at the root)", async () => {
    const entries = readZip(fixtureZip, limits)
    const manifest = findManifestEntry(entries)
    expect(manifest.name).toBe('module.json')
    const content = await verifyEntries(fixtureZip, entries, manifest, limits)
    expect(JSON.parse(content.toString())).toMatchObject({ id: 'test-module-id', version: '2.0.1' })
  })

  it('finds module.json in the one top-level folder, ignoring __MACOSX', async () => {
    const bytes = zip({
      'mod/module.json': '{}',
      'mod/scripts/a.js': 'x',
      '__MACOSX/mod/._module.json': 'junk',
    })
    expect(findManifestEntry(readZip(bytes, limits)).name).toBe('mod/module.json')
    expect(await verdict(bytes)).toBe('ok')
  })

  it('refuses a zip without module.json where Foundry looks', async () => {
    expect(await verdict(zip({ 'a/module.json': '{}', 'b/x.js': 'x' }))).toMatch(/^zip_manifest_missing/)
    expect(await verdict(zip({ 'scripts/module.js': 'x' }))).toMatch(/^zip_manifest_missing/)
  })

  it.each([
    ['../evil.js', /"\.\.\/" path/],
    ['scripts/../../evil.js', /"\.\.\/" path/],
    ['..\\evil.js', /"\.\.\/" path/],
    ['/etc/evil.js', /absolute path/],
    ['C:/evil.js', /absolute path/],
  ])('refuses an entry named %s', async (name, reason) => {
    expect(await verdict(zip({ 'module.json': '{}', [name]: 'x' }))).toMatch(
      new RegExp(`^zip_unsafe_path: .*${reason.source}`)
    )
  })

  it('names unsafe paths and lets ordinary ones through', () => {
    expect(unsafePathReason('scripts/module.js')).toBeNull()
    expect(unsafePathReason('a/..b/c')).toBeNull()
    expect(unsafePathReason('a\0b')).toMatch(/NUL/)
  })

  it('refuses a zip bomb by its declared ratio, before inflating anything', async () => {
    expect(await verdict(releaseZip(spec('bomb')))).toMatch(
      /^zip_bomb: entry "assets\/padding\.bin" would inflate \d+ times/
    )
  })

  it('refuses a zip whose entry inflates beyond its declared size (lying headers)', async () => {
    expect(await verdict(releaseZip(spec('bomb-lying')))).toMatch(
      /^zip_bomb: entry "assets\/padding\.bin" inflates beyond its declared 1000 bytes/
    )
  })

  it('refuses more entries, or more bytes in total, than the limits', async () => {
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`f${i}.js`, 'x']))
    expect(await verdict(zip({ 'module.json': '{}', ...many }))).toMatch(/^zip_bomb: 102 entries/)
    const big = zip({
      'module.json': '{}',
      'a.bin': new Uint8Array(600_000).fill(7),
      'b.bin': new Uint8Array(600_000).fill(9),
    })
    expect(await verdict(big, { ...limits, maxUncompressedBytes: 1_000_000 })).toMatch(
      /^zip_bomb: the archive inflates to more than/
    )
  })

  it('verifies a 256 MiB entry as a stream, in bounded memory', async () => {
    const bytes = await zerosZip(256 * MiB)
    // Zeros deflate about 1000:1; the ratio cap is lifted so that the entry is inflated and checked.
    // Inflated whole, it took 2 x 256 MiB; streamed, only chunks not yet collected (V8 collects
    // after some tens of MiB of garbage Buffers).
    const generous = { ...limits, maxUncompressedBytes: 512 * MiB, maxRatio: 2000 }
    let result = ''
    const growth = await memoryGrowth(async () => (result = await verdict(bytes, generous)))
    expect(result).toBe('ok')
    expect(growth).toBeLessThan(96 * MiB)
  })

  it('refuses a header lying about its size as soon as the entry passes it, in bounded memory', async () => {
    const bytes = await zerosZip(300 * MiB, 200 * MiB)
    const generous = { ...limits, maxUncompressedBytes: 512 * MiB, maxRatio: 2000 }
    let result = ''
    const growth = await memoryGrowth(async () => (result = await verdict(bytes, generous)))
    expect(result).toMatch(
      /^zip_bomb: entry "assets\/zeros\.bin" inflates beyond its declared 209715200 bytes/
    )
    expect(growth).toBeLessThan(96 * MiB)
  })

  it('keeps a running total of what actually inflates against the limit', async () => {
    const bytes = await zerosZip(4 * MiB)
    const entries = readZip(bytes, { ...limits, maxRatio: 2000 })
    await expect(
      verifyEntries(bytes, entries, findManifestEntry(entries), {
        ...limits,
        maxUncompressedBytes: 3 * MiB,
      })
    ).rejects.toThrowError(/the archive inflates to more than the limit of 3145728 bytes/)
  })

  it('refuses an archive whose entries, each under the ratio floor, inflate too much together', async () => {
    const files = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`assets/${i}.bin`, new Uint8Array(900 * 1024)])
    )
    expect(await verdict(zip({ 'module.json': '{}', ...files }))).toMatch(
      /^zip_bomb: the archive would inflate \d+ times \(limit 200\)/
    )
  })

  it('refuses a module.json larger than the manifest limit before inflating it', async () => {
    const big = zip({ 'module.json': `{"padding":"${randomBytes(1.5 * MiB).toString('base64')}"}` })
    expect(await verdict(big)).toMatch(/^manifest_too_large: entry "module\.json" is \d+ bytes/)
    expect(await verdict(big, { ...limits, maxKeptBytes: 3 * MiB })).toBe('ok')
  })

  it.each([
    ['a symbolic link', 0o120777],
    ['a fifo', 0o010644],
    ['a character device', 0o020644],
    ['a block device', 0o060644],
    ['a socket', 0o140755],
  ])('refuses an entry that is %s', async (what, mode) => {
    const bytes = zipSync({
      'module.json': strToU8('{}'),
      'scripts/link.js': [strToU8('/etc/passwd'), { os: 3, attrs: mode * 0x10000 }],
    })
    expect(await verdict(bytes)).toBe(
      `zip_unsafe_entry: entry "scripts/link.js" is ${what}, not a regular file or folder`
    )
  })

  it('accepts regular files and folders with Unix modes', async () => {
    const bytes = zipSync({
      'module.json': [strToU8('{}'), { os: 3, attrs: 0o100644 * 0x10000 }],
      'scripts/': [new Uint8Array(0), { os: 3, attrs: 0o040755 * 0x10000 }],
      'scripts/run.sh': [strToU8('#!/bin/sh'), { os: 3, attrs: 0o100755 * 0x10000 }],
    })
    expect(await verdict(bytes)).toBe('ok')
  })

  it.each([
    ['module.json', 'Module.json'],
    ['scripts/Main.js', 'SCRIPTS/main.js'],
    ['lang/caf\u00e9.json', 'lang/cafe\u0301.json'],
    ['lang/CAF\u00c9.json', 'lang/cafe\u0301.json'],
    ['scripts\\a.js', 'scripts/A.js'],
    ['module.json', 'module.json. '],
    ['scripts/main.js', 'scripts./main.js'],
  ])('refuses "%s" beside "%s" (the same file on macOS or Windows)', async (first, second) => {
    expect(await verdict(zip({ 'module.json': '{}', [first]: 'a', [second]: 'b' }))).toMatch(
      /^zip_unsafe_path: entries ".*" and ".*" are the same file on a case-insensitive or Unicode-normalising file system/
    )
  })

  it('refuses garbage, truncation and a corrupted entry', async () => {
    expect(await verdict(strToU8('not a zip at all, not even close'))).toMatch(
      /^zip_invalid: not a zip archive/
    )
    expect(await verdict(fixtureZip.subarray(0, fixtureZip.length - 10))).toMatch(/^zip_invalid/)
    const corrupt = Buffer.from(zip({ 'module.json': '{"id":"x","padding":"' + 'y'.repeat(200) + '"}' }))
    corrupt[50] = corrupt[50]! ^ 0xff // inside the compressed data (the local header ends at 41)
    expect(await verdict(corrupt)).toMatch(
      /^zip_invalid: entry "module.json" (does not inflate|fails its CRC check|is \d+ bytes)/
    )
  })

  it('refuses two entries with the same name', async () => {
    // Rename modulX.json to module.json in both headers: same length, so every offset stays valid.
    const original = Buffer.from(zip({ 'module.json': '{}', 'modulX.json': 'a' })).toString('latin1')
    const clash = Buffer.from(original.replaceAll('modulX.json', 'module.json'), 'latin1')
    expect(await verdict(clash)).toMatch(/^zip_invalid: entry "module.json" appears twice/)
  })
})

describe('rewriting module zips', () => {
  it('replaces only module.json; every other entry keeps its bytes', async () => {
    const original = zip({
      'my-mod/module.json': JSON.stringify({
        id: 'my-mod',
        version: '1.0.0',
        manifest: 'old',
        download: 'old',
      }),
      'my-mod/scripts/main.js': 'export const x = 1\n'.repeat(100),
      'my-mod/assets/': new Uint8Array(0),
      'my-mod/assets/image.webp': new Uint8Array(5000).map((_, i) => (i * 31) % 251),
    })
    const entries = readZip(original, limits)
    const target = findManifestEntry(entries)
    const content = strToU8(
      JSON.stringify({ id: 'my-mod', version: '1.0.0', manifest: 'new', download: 'new' })
    )
    const rewritten = rewriteZip(original, entries, target, content)

    const before = unzipSync(original)
    const after = unzipSync(rewritten)
    expect(Object.keys(after)).toEqual(Object.keys(before))
    expect(JSON.parse(strFromU8(after['my-mod/module.json']!))).toMatchObject({
      manifest: 'new',
      download: 'new',
    })
    for (const name of Object.keys(before).filter((n) => n !== 'my-mod/module.json'))
      expect(Buffer.from(after[name]!).equals(Buffer.from(before[name]!))).toBe(true)
    // Our own reader accepts what we wrote (sizes and CRCs all consistent).
    expect(await verdict(rewritten)).toBe('ok')
  })

  it("rewrites ForgeVTT's real zip into one a standard reader opens", () => {
    const entries = readZip(fixtureZip, limits)
    const out = rewriteZip(
      fixtureZip,
      entries,
      findManifestEntry(entries),
      strToU8('{"id":"test-module-id"}')
    )
    expect(strFromU8(unzipSync(out)['module.json']!)).toBe('{"id":"test-module-id"}')
  })
})
