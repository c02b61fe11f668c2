/**
 * The bytes of a release's two assets (module.json and module.zip), built once per spec and kept:
 * the payloads need their sizes and the server their bytes, and a zip bomb takes a while to build.
 */
import { releaseManifest, type ReleaseSpec } from './spec.ts'
import { releaseZip } from './zips.ts'

const sizeCache = new Map<
  string,
  { manifest: number; zip: number; bytes: { manifest: Buffer; zip: Uint8Array } }
>()

export function assets(spec: ReleaseSpec) {
  const key = JSON.stringify(spec)
  let cached = sizeCache.get(key)
  if (!cached) {
    const manifest = Buffer.from(JSON.stringify(releaseManifest(spec), null, 2))
    const zip = releaseZip(spec)
    cached = { manifest: manifest.length, zip: zip.length, bytes: { manifest, zip } }
    if (sizeCache.size > 500) sizeCache.clear()
    sizeCache.set(key, cached)
  }
  return cached
}
export const assetSizes = (spec: ReleaseSpec) => {
  const a = assets(spec)
  return { manifest: a.manifest, zip: a.zip }
}
