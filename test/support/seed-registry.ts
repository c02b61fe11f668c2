/**
 * Seeds the edge tests' registry (test/edge/global-setup.ts) with one packaged module, written as the release service writes
 * it (RegistryWriter), so the edge's registry routes have a real manifest and a multi-chunk zip to
 * proxy and cache. Runs in Node (global setup).
 */
import { createHash } from 'node:crypto'
import type { NatsConnection } from '@nats-io/nats-core'
import { ensureRegistryStorage } from '../../backend/registry/buckets.ts'
import { zipObjectName } from '../../backend/registry/names.ts'
import { RegistryWriter } from '../../backend/registry/writer.ts'
import { packagedEntry } from './packaged-entry.ts'

import { seededModule } from '../edge/seeded-module.ts'

export async function seedRegistry(nc: NatsConnection): Promise<void> {
  const { id, version, releaseId, zipBytes } = seededModule
  const writer = new RegistryWriter(await ensureRegistryStorage(nc, 1))
  // Not a real zip: the registry serves bytes; a pattern that is easy to check end to end.
  const zip = Uint8Array.from({ length: zipBytes }, (_, i) => i % 251)
  const object = zipObjectName(id, version, releaseId)
  await writer.putZip(object, zip)
  const json = JSON.stringify({ id, version, title: 'Edge cache test' })
  const sha256 = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex')
  await writer.putManifest({ moduleId: id, version, releaseId, json, sha256: sha256(json) })
  const result = await writer.commitVersion({
    moduleId: id,
    title: 'Edge cache test',
    repository: 'vtta/edge-cache-test',
    entry: packagedEntry({
      id,
      version,
      repository: 'vtta/edge-cache-test',
      repositoryId: 9001,
      releaseId,
      baseUrl: 'https://edge.test',
      zip: { object, sha256: sha256(zip), size: zip.length },
      manifestSha256: sha256(json),
    }),
  })
  if (result.outcome !== 'committed') throw new Error(`seeding the registry: ${result.outcome}`)
}
