import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  MAX_MANIFEST_DEPTH,
  MAX_SERVED_MANIFEST_BYTES,
  moduleUrls,
  nestsDeeperThan,
  prettyJsonBytes,
  rewriteManifest,
  validateManifest,
} from '../../../backend/releases/manifest.ts'
import { Rejection } from '../../../backend/releases/errors.ts'

const foundry = join(import.meta.dirname, '..', '..', 'fixtures', 'foundry')
const manifests = (function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? walk(path) : name.endsWith('.json') ? [relative(foundry, path)] : []
  })
})(foundry).sort()

/** Fixtures a release must not get through, and why. */
const refused: Record<string, RegExp> = {
  // Templates, not releases: their version is a placeholder.
  'ddb-importer/module-template.json': /version "VERSION" must start with a digit/,
  'league-template/module.json': /version "#\{VERSION\}#" must start with a digit/,
  // SchemaStore's negative tests: an unknown compatibility key, an empty title.
  'schemastore-tests/negative_test--pf2e-abomination-vaults_module.json':
    /relationships\.systems\.0\.compatibility: Unrecognized key: "compatible"/,
  'schemastore-tests/negative_test--remote-highlight-ui_module.json': /title: must not be empty/,
}

const expected: Record<
  string,
  { id: string; version: string; minimum: string | null; verified: string | null }
> = {
  'ddb-importer/module.2.1.21.json': {
    id: 'ddb-importer',
    version: '2.1.21',
    minimum: '0.8.6',
    verified: '0.8.8',
  },
  'ddb-importer/module.7.4.1.release.json': {
    id: 'ddb-importer',
    version: '7.4.1',
    minimum: '14.359',
    verified: '14.359',
  },
  'lib-wrapper/module.json': { id: 'lib-wrapper', version: '1.13.5.1', minimum: '0.6.5', verified: '14' },
  'vtta/vtta-core.2.0.3.module.json': {
    id: 'vtta-core',
    version: '2.0.3',
    minimum: '0.7.6',
    verified: '0.8.8',
  },
  'vtta/vtta-tokenizer.first-commit.module.json': {
    id: 'vtta-tokenizer',
    version: '1.0.16',
    minimum: '0.4.4',
    verified: null,
  },
  'vtta/vtta-dndbeyond.2.3.0-rc.1.module.json': {
    id: 'vtta-dndbeyond',
    version: '2.3.0-rc.1',
    minimum: '0.5.5',
    verified: '0.5.6',
  },
}

describe('manifest validation against every fixture manifest', () => {
  it('covers all of them', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(20)
  })

  it.each(manifests)('%s', (file) => {
    const text = readFileSync(join(foundry, file), 'utf8')
    if (refused[file]) {
      expect(() => validateManifest(text)).toThrowError(refused[file])
      try {
        validateManifest(text)
      } catch (err) {
        expect(err).toBeInstanceOf(Rejection)
        expect((err as Rejection).code).toBe('manifest_invalid')
      }
      return
    }
    const m = validateManifest(text)
    const raw = JSON.parse(text) as Record<string, unknown>
    expect(m.id).toBe(raw.id ?? raw.name)
    expect(m.version).toBe(String(raw.version))
    expect(m.title).toBe(String(raw.title).trim())
    expect(m.raw).toEqual(raw)
    if (expected[file]) {
      const e = expected[file]
      expect(m).toMatchObject({ id: e.id, version: e.version })
      expect(m.compatibility).toMatchObject({ minimum: e.minimum, verified: e.verified })
    }
  })
})

describe('manifest validation of hostile or broken input', () => {
  const base = { id: 'my-module', title: 'My Module', version: '1.0.0', compatibility: { minimum: '12' } }
  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['an array', '[]', /not a JSON object/],
    ['no id', JSON.stringify({ ...base, id: undefined }), /id: required/],
    ['a path in the id', JSON.stringify({ ...base, id: '../etc' }), /id "\.\.\/etc" must be lower-case/],
    ['an upper-case id', JSON.stringify({ ...base, id: 'MyModule' }), /must be lower-case/],
    ['an overlong id', JSON.stringify({ ...base, id: 'a'.repeat(101) }), /must be lower-case/],
    ['no version', JSON.stringify({ ...base, version: undefined }), /version: Invalid input/],
    ['a version with a slash', JSON.stringify({ ...base, version: '1.0/../2' }), /must start with a digit/],
    [
      'esmodules not a list',
      JSON.stringify({ ...base, esmodules: 'main.js' }),
      /esmodules: Invalid input: expected array/,
    ],
    [
      'a typo in compatibility',
      JSON.stringify({ ...base, compatibility: { minimun: '12' } }),
      /Unrecognized key: "minimun"/,
    ],
  ])('refuses %s', (_what, text, message) => {
    expect(() => validateManifest(text)).toThrowError(message)
  })

  it('accepts a numeric version and numeric compatibility, as strings', () => {
    const m = validateManifest(
      JSON.stringify({ ...base, version: 2, compatibility: { minimum: 10, verified: 11.315 } })
    )
    expect(m.version).toBe('2')
    expect(m.compatibility).toEqual({ minimum: '10', verified: '11.315', maximum: null })
  })
})

describe('manifest rewrite', () => {
  it('points manifest at the stable channel and download at the version, keeping every other field', () => {
    const raw = JSON.parse(readFileSync(join(foundry, 'item-piles', 'module.json'), 'utf8')) as Record<
      string,
      unknown
    >
    const urls = moduleUrls('https://vtta.io/', 'item-piles', '3.1.0')
    const rewritten = JSON.parse(rewriteManifest(raw, urls)) as Record<string, unknown>
    expect(rewritten.manifest).toBe('https://vtta.io/modules/item-piles/module.json')
    expect(rewritten.download).toBe('https://vtta.io/modules/item-piles/3.1.0/module.zip')
    expect({ ...rewritten, manifest: raw.manifest, download: raw.download }).toEqual(raw)
    expect(Object.keys(rewritten)).toEqual(Object.keys(raw))
  })

  it('encodes a version that is not URL-safe in the download URL', () => {
    expect(moduleUrls('https://vtta.io', 'm', '1.0.0+build.5').download).toBe(
      'https://vtta.io/modules/m/1.0.0%2Bbuild.5/module.zip'
    )
  })
})

describe('manifest bounds', () => {
  const base = { id: 'my-module', title: 'My Module', version: '1.0.0' }
  const urls = moduleUrls('https://vtta.io', 'my-module', '1.0.0')
  const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth)
  const withField = (field: string) => `{"id":"my-module","title":"My Module","version":"1.0.0","x":${field}}`
  const rejection = (run: () => unknown) => {
    try {
      run()
    } catch (err) {
      if (err instanceof Rejection) return `${err.code}: ${err.message}`
      throw err
    }
    return 'ok'
  }

  it('refuses the nested-array bomb before parsing it, quickly and in bounded memory', () => {
    // 120 KB: it pretty-printed to 360 MB (a 240 KB one to a RangeError after 780 MiB).
    const bomb = withField(nested(60_000))
    const before = process.memoryUsage()
    const started = performance.now()
    const result = rejection(() => rewriteManifest(validateManifest(bomb).raw, urls))
    const elapsed = performance.now() - started
    const after = process.memoryUsage()
    expect(result).toBe(
      `manifest_too_deep: module.json nests arrays and objects more than ${MAX_MANIFEST_DEPTH} levels deep`
    )
    expect(elapsed).toBeLessThan(1000)
    expect(after.heapUsed + after.external - (before.heapUsed + before.external)).toBeLessThan(
      64 * 1024 * 1024
    )
  })

  it(`accepts ${MAX_MANIFEST_DEPTH} levels of nesting (the manifest itself is one), not one more`, () => {
    expect(rejection(() => validateManifest(withField(nested(MAX_MANIFEST_DEPTH - 1))))).toBe('ok')
    expect(rejection(() => validateManifest(withField(nested(MAX_MANIFEST_DEPTH))))).toMatch(
      /^manifest_too_deep/
    )
    // Brackets in strings (escaped quotes too) are text, not nesting.
    expect(rejection(() => validateManifest(withField(JSON.stringify(`\\"${nested(100)}`))))).toBe('ok')
    expect(nestsDeeperThan(`["\\\\", ${nested(3)}]`, 4)).toBe(false)
    expect(nestsDeeperThan(`["\\\\", ${nested(4)}]`, 4)).toBe(true)
  })

  it('refuses a manifest that would be served larger than 256 KiB', () => {
    expect(MAX_SERVED_MANIFEST_BYTES).toBe(256 * 1024)
    const big = JSON.stringify({ ...base, description: 'x'.repeat(300_000) })
    expect(rejection(() => validateManifest(big))).toMatch(
      /^manifest_too_large: module\.json would be \d+ bytes pretty-printed, more than the limit of 262144/
    )
  })

  it('measures the pretty-printed size, not the compact one, without building it', () => {
    // 120 KB compact; every element on its own indented line pretty-printed: about 540 KB.
    const wide = JSON.stringify({ ...base, flags: { list: new Array(60_000).fill(0) } })
    expect(wide.length).toBeLessThan(MAX_SERVED_MANIFEST_BYTES)
    expect(rejection(() => validateManifest(wide))).toMatch(
      /^manifest_too_large: module\.json would be 5\d{5} bytes/
    )
  })

  it('refuses a rewrite that the URLs push over the limit; what it serves is never larger', () => {
    const pretty = (v: unknown) => Buffer.byteLength(`${JSON.stringify(v, null, 2)}\n`)
    const raw: Record<string, unknown> = { ...base, description: '' }
    raw.description = 'é'.repeat((MAX_SERVED_MANIFEST_BYTES - pretty(raw)) / 2 - 10)
    expect(pretty(raw)).toBeLessThanOrEqual(MAX_SERVED_MANIFEST_BYTES)
    expect(rejection(() => rewriteManifest(raw, urls))).toMatch(
      /^manifest_too_large: the rewritten module\.json would be \d+ bytes pretty-printed/
    )
    raw.description = 'é'.repeat(
      (MAX_SERVED_MANIFEST_BYTES - pretty({ ...raw, ...urls, description: '' })) / 2
    )
    expect(Buffer.byteLength(rewriteManifest(raw, urls))).toBeLessThanOrEqual(MAX_SERVED_MANIFEST_BYTES)
  })

  it.each([
    [
      'every fixture manifest',
      manifests.map((f) => JSON.parse(readFileSync(join(foundry, f), 'utf8')) as unknown),
    ],
    [
      'empty and nested containers, escapes and non-ASCII text',
      [
        {},
        [],
        { a: [], b: {}, c: [[], [{}]], d: [1, [2, [3, {}]]] },
        { 'k"[{,:': 'v\\"]},:', nl: 'a\nb', u: 'é€😀', n: [-1.5e-7, 1e21, true, null] },
        [[[[[]]]]],
      ],
    ],
  ])('computes the pretty-printed size exactly: %s', (_what, values) => {
    for (const value of values)
      expect(prettyJsonBytes(JSON.stringify(value))).toBe(Buffer.byteLength(JSON.stringify(value, null, 2)))
  })
})
