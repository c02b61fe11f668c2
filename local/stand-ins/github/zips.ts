/**
 * The release's zip, built with fflate: the module.json and a small script per esmodule, laid out
 * as the spec's `zip` kind asks, including the hostile kinds the release service must refuse (a
 * bomb, one that lies about its size, `../` and absolute paths, a symbolic link, a second
 * module.json differing only in case, none at all).
 */
import { zipSync, type Zippable } from 'fflate'
import { z } from 'zod'
import { releaseManifest, type ReleaseSpec } from './spec.ts'
import { declareSize } from './zip-bytes.ts'

const ZIP_MTIME = new Date('2024-01-01T00:00:00Z')

/** The release's zip, built with fflate from the manifest and a small script per esmodule. */
export function releaseZip(spec: ReleaseSpec): Uint8Array {
  const manifest = releaseManifest(spec, true)
  const id = [manifest.id, manifest.name].find((v): v is string => typeof v === 'string') ?? spec.fixture
  const esmodules = z.array(z.string()).safeParse(manifest.esmodules)
  const scripts = (esmodules.success ? esmodules.data : ['scripts/module.js']).map((p) =>
    p.replace(/^\.\//, '')
  )
  const files: Record<string, Uint8Array> = {}
  if (spec.zip !== 'no-manifest') files['module.json'] = Buffer.from(JSON.stringify(manifest, null, 2))
  for (const script of scripts)
    files[script] = Buffer.from(`// ${id} ${spec.version}\nexport const version = '${spec.version}'\n`)
  if (spec.zip === 'traversal') files['../evil.js'] = Buffer.from('// escapes the module folder\n')
  if (spec.zip === 'absolute') files['/etc/evil.js'] = Buffer.from('// absolute path\n')
  // Beside module.json: the one a case-insensitive file system keeps may not be the one we rewrote.
  if (spec.zip === 'case-duplicate') files['Module.json'] = Buffer.from('{"id":"not-the-rewritten-one"}\n')
  const padding = 16 * 1024 * 1024
  if (spec.zip === 'bomb' || spec.zip === 'bomb-lying') files['assets/padding.bin'] = new Uint8Array(padding)
  const tree: Zippable = {}
  for (const [name, data] of Object.entries(files))
    tree[spec.zip === 'folder' ? `${id}/${name}` : name] = [data, { level: 9, mtime: ZIP_MTIME }]
  // A Unix symbolic link (mode 0o120777 in the external attributes' high bits) to a file outside.
  if (spec.zip === 'symlink')
    tree['scripts/secrets.js'] = [
      Buffer.from('/etc/passwd'),
      { level: 9, mtime: ZIP_MTIME, os: 3, attrs: 0o120777 * 0x10000 },
    ]
  const zip = zipSync(tree)
  if (spec.zip === 'bomb-lying') declareSize(zip, 'assets/padding.bin', 1000)
  return zip
}
