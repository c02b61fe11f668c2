/**
 * Which assets of a release are the module's manifest and zip, and downloading them through the
 * outbound fetcher (backend/outbound/fetch.ts: RELEASE_ASSET_HOSTS on every hop, DNS pinned to
 * checked public addresses, the byte limit while reading, one deadline). Its failures become the
 * release's: a refusal the release cannot get past (Rejection), or ours and GitHub's to retry
 * (TransientError, with GitHub's Retry-After).
 */
import { checkUrl, type Allowlist } from '../outbound/allowlist.ts'
import { safeFetch, type FetchFailure } from '../outbound/fetch.ts'
import { Rejection, TransientError } from './errors.ts'
import { githubRequestHeaders, type ReleaseAsset } from './github-api.ts'

export interface AssetLimits {
  /** RELEASE_ASSET_HOSTS, with GITHUB_API_URL's origin. */
  allowlist: Allowlist
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
  const what = `asset ${asset.name}`
  const candidates = [
    { url: asset.url, headers: githubRequestHeaders(token, 'application/octet-stream') },
    { url: asset.browser_download_url, headers: githubRequestHeaders(undefined, 'application/octet-stream') },
  ]
  const usable = candidates.find((c) => checkUrl(limits.allowlist, c.url, what).ok)
  if (!usable) {
    let host = '(not a URL)'
    try {
      host = new URL(asset.url).host
    } catch {
      // keep the placeholder
    }
    throw new Rejection(
      'asset_host_not_allowed',
      `${what} is served from ${host}, which is not an allowed release asset host`
    )
  }
  if (asset.size > maxBytes)
    throw new Rejection(
      'asset_too_large',
      `${what} is ${asset.size} bytes, more than the limit of ${maxBytes}`
    )
  const fetched = await safeFetch(usable.url, {
    allowlist: limits.allowlist,
    what,
    maxBytes,
    totalTimeoutMs: limits.timeoutMs,
    headers: usable.headers,
    onProgress,
  })
  if (!fetched.ok) throw assetFailure(what, fetched.failure, limits.timeoutMs)
  return fetched.bytes
}

/** A failed download as the release sees it: its own fault and final, or worth retrying. */
export function assetFailure(
  what: string,
  failure: FetchFailure,
  timeoutMs: number
): Rejection | TransientError {
  // The fetcher's messages mostly name the asset already; the rest get its name in front.
  const message = failure.message.includes(what) ? failure.message : `${what}: ${failure.message}`
  switch (failure.code) {
    case 'scheme_not_allowed':
    case 'host_not_allowed':
    case 'address_blocked':
      return new Rejection('asset_host_not_allowed', message)
    case 'invalid_url':
    case 'too_many_redirects':
    case 'bad_redirect':
    case 'refused_content':
      return new Rejection('asset_unavailable', message)
    case 'too_large':
      return new Rejection('asset_too_large', message)
    case 'http_status':
      // 403 is how GitHub says "rate limited" without a token; all of these pass.
      if (failure.status === 429 || failure.status >= 500 || failure.status === 403)
        return new TransientError(message, failure.retryAfterMs)
      if (failure.status === 404 || failure.status === 410)
        return new Rejection('asset_missing', `${what} was not found (HTTP ${failure.status})`)
      return new Rejection('asset_unavailable', message)
    case 'timeout':
      return new TransientError(`${what}: no complete answer within ${timeoutMs} ms`)
    case 'length_mismatch':
    case 'unreachable':
      return new TransientError(message)
  }
}
