/** Which assets of a release are the module's manifest and zip, and downloading them. */
import { Rejection } from './errors.ts'
import { fetchLimited, hostAllowed } from './fetch-limited.ts'
import { githubRequestHeaders, type ReleaseAsset } from './github-api.ts'

export interface AssetLimits {
  allowedHosts: ReadonlySet<string>
  timeoutMs: number
}

export function manifestAsset(assets: readonly ReleaseAsset[]): ReleaseAsset | null {
  return assets.find((a) => a.name.toLowerCase() === 'module.json') ?? null
}

/** `module.zip`, else `<id>.zip`, else the only zip; several candidates is the author's mistake to fix. */
export function zipAsset(assets: readonly ReleaseAsset[], moduleId: string | null): ReleaseAsset {
  const zips = assets.filter((a) => a.name.toLowerCase().endsWith('.zip'))
  const chosen =
    zips.find((a) => a.name.toLowerCase() === 'module.zip') ??
    (moduleId ? zips.find((a) => a.name.toLowerCase() === `${moduleId}.zip`) : undefined) ??
    (zips.length === 1 ? zips[0] : undefined)
  if (chosen) return chosen
  if (zips.length === 0) throw new Rejection('asset_missing', 'the release has no .zip asset')
  throw new Rejection(
    'asset_missing',
    `the release has ${zips.length} zip assets and none is named module.zip${moduleId ? ` or ${moduleId}.zip` : ''}`
  )
}

/**
 * The asset's bytes, through its API URL (with the installation's token: works for private
 * repositories) or its download URL.
 */
export async function downloadAsset(
  asset: ReleaseAsset,
  maxBytes: number,
  limits: AssetLimits,
  token: string | undefined,
  onProgress?: () => void
): Promise<Uint8Array> {
  const candidates = [
    { url: asset.url, headers: githubRequestHeaders(token, 'application/octet-stream') },
    { url: asset.browser_download_url, headers: githubRequestHeaders(undefined, 'application/octet-stream') },
  ]
  const usable = candidates.find((c) => {
    try {
      return hostAllowed(new URL(c.url), limits.allowedHosts)
    } catch {
      return false
    }
  })
  if (!usable) {
    let host = '(not a URL)'
    try {
      host = new URL(asset.url).host
    } catch {
      // keep the placeholder
    }
    throw new Rejection(
      'asset_host_not_allowed',
      `asset ${asset.name} is served from ${host}, which is not an allowed release asset host`
    )
  }
  if (asset.size > maxBytes)
    throw new Rejection(
      'asset_too_large',
      `asset ${asset.name} is ${asset.size} bytes, more than the limit of ${maxBytes}`
    )
  return fetchLimited(usable.url, {
    allowedHosts: limits.allowedHosts,
    maxBytes,
    timeoutMs: limits.timeoutMs,
    what: `asset ${asset.name}`,
    headers: usable.headers,
    onProgress,
  })
}
