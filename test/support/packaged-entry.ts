/**
 * A registry version entry as the release service commits it for a packaged stable release of `id` on
 * GitHub repository `repository`, with our URLs under `baseUrl`. For tests and benchmarks that write the
 * registry directly (RegistryWriter.commitVersion); the zip and manifest digests are placeholders unless given.
 */
import type { VersionEntry } from '../../backend/registry/records.ts'

export function packagedEntry(o: {
  id: string
  version: string
  repository: string
  repositoryId: number
  releaseId: number
  baseUrl: string
  zip?: VersionEntry['zip']
  manifestSha256?: string
}): VersionEntry {
  const base = `${o.baseUrl}/modules/${o.id}/${o.version}`
  return {
    version: o.version,
    channel: 'stable',
    status: 'packaged',
    repositoryId: o.repositoryId,
    releaseId: o.releaseId,
    tag: `v${o.version}`,
    releaseUrl: `https://github.com/${o.repository}/releases/tag/v${o.version}`,
    manifestUrl: `${base}/module.json`,
    downloadUrl: `${base}/module.zip`,
    compatibility: { minimum: '12', verified: '13', maximum: null },
    zip: o.zip ?? { object: `${o.id}/${o.version}.zip`, sha256: '0'.repeat(64), size: 1 },
    manifestSha256: o.manifestSha256 ?? '0'.repeat(64),
    packagedAt: new Date().toISOString(),
    deletedAt: null,
  }
}
