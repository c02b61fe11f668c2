/**
 * A release as the GitHub stand-in serves it: the spec (zod) a test or another process registers,
 * the ids of the release and of its two assets (module.json, module.zip), and the module.json it
 * serves. A spec can ask for trouble (a hostile zip, a manifest that disagrees, assets on another
 * host, a slow download) so the release service's defences can be exercised.
 */
import { z } from 'zod'
import { fixtureModules, fixtureNames, readFixture, type FixtureName } from './fixtures.ts'

export const zipKinds = [
  'root',
  'folder',
  'bomb',
  'bomb-lying',
  'traversal',
  'absolute',
  'no-manifest',
  'symlink',
  'case-duplicate',
] as const

export const releaseSpecSchema = z.strictObject({
  fixture: z.enum(fixtureNames as [FixtureName, ...FixtureName[]]),
  owner: z.string(),
  repo: z.string(),
  repositoryId: z.number().int().positive(),
  releaseId: z.number().int().positive(),
  tag: z.string(),
  version: z.string(),
  prerelease: z.boolean(),
  draft: z.boolean().default(false),
  notes: z.string(),
  /** Fields set in module.json (release asset and zip). */
  manifestPatch: z.record(z.string(), z.unknown()).default({}),
  /** Fields set in the zip's module.json only. */
  zipManifestPatch: z.record(z.string(), z.unknown()).default({}),
  zip: z.enum(zipKinds).default('root'),
  /** false: the release has only the zip. */
  manifestAsset: z.boolean().default(true),
  /** Serve the assets' URLs from another base (e.g. a host outside the allowlist). */
  assetBaseUrl: z.url().optional(),
  /** Stall the zip download half-way for this long. */
  slowZipMs: z.number().int().min(0).max(120_000).default(0),
  /** Only the first download is slow. */
  slowOnce: z.boolean().default(true),
  /** GitHub's `published_at`; set when the stand-in registers the release. */
  publishedAt: z.iso.datetime().optional(),
})
export type ReleaseSpec = z.infer<typeof releaseSpecSchema>
export type ReleaseSpecInput = z.input<typeof releaseSpecSchema>

export const manifestAssetId = (releaseId: number) => releaseId * 10 + 1
export const zipAssetId = (releaseId: number) => releaseId * 10 + 2
/** Where the stand-in serves a release's zip bytes (after the asset URL's redirect). */
export const zipObjectPath = (releaseId: number) => `/_objects/${zipAssetId(releaseId)}`

/**
 * A stable release id for a repository's version, so a repeated delivery names the same release
 * (GitHub's release ids are unique across repositories; so are these, but for hash collisions).
 */
export function releaseIdFor(repositoryId: number, version: string): number {
  let h = 0x811c9dc5
  for (const c of `${repositoryId}@${version}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0
  return 100_000_000 + (h % 800_000_000)
}

/** The module.json a release serves: the fixture's, at the release's version, patched as asked. */
export function releaseManifest(spec: ReleaseSpec, forZip = false): Record<string, unknown> {
  const fixture = fixtureModules[spec.fixture]
  const manifest = JSON.parse(readFixture(fixture.manifest)) as Record<string, unknown>
  return {
    ...manifest,
    ...fixture.patch,
    version: spec.version,
    ...spec.manifestPatch,
    ...(forZip ? spec.zipManifestPatch : {}),
  }
}
