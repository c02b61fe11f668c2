/**
 * The release as GitHub has it now (GET /repos/{owner}/{repo}/releases/{id}): the payload of a
 * `published` event lists only assets uploaded before publishing, so the asset list comes from here.
 */
import { z } from 'zod'
import { Rejection, TransientError } from './errors.ts'
import { fetchLimited } from './fetch-limited.ts'

export const releaseAssetSchema = z.object({
  id: z.number().int(),
  name: z.string().max(255),
  /** API URL; with Accept: application/octet-stream it redirects to the bytes. */
  url: z.string(),
  browser_download_url: z.string(),
  size: z.number().int().nonnegative(),
  content_type: z.string().nullish(),
  state: z.string().optional(),
})
export type ReleaseAsset = z.infer<typeof releaseAssetSchema>

export const githubReleaseSchema = z.object({
  id: z.number().int(),
  tag_name: z.string(),
  draft: z.boolean(),
  prerelease: z.boolean(),
  assets: z.array(releaseAssetSchema).max(1000),
})
export type GitHubRelease = z.infer<typeof githubReleaseSchema>

export interface GitHubApi {
  apiUrl: string
  token: string | undefined
  timeoutMs: number
}

export const githubRequestHeaders = (token: string | undefined, accept: string): Record<string, string> => ({
  accept,
  'user-agent': 'vtta.io-release-service',
  'x-github-api-version': '2022-11-28',
  ...(token ? { authorization: `Bearer ${token}` } : {}),
})

export async function fetchRelease(
  api: GitHubApi,
  repository: string,
  releaseId: number
): Promise<GitHubRelease> {
  const base = new URL(api.apiUrl)
  const url = new URL(`${base.pathname.replace(/\/$/, '')}/repos/${repository}/releases/${releaseId}`, base)
  let bytes: Uint8Array
  try {
    bytes = await fetchLimited(url.href, {
      allowedHosts: new Set([base.host.toLowerCase()]),
      maxBytes: 5 * 1024 * 1024,
      timeoutMs: api.timeoutMs,
      what: `release ${releaseId} of ${repository}`,
      headers: githubRequestHeaders(api.token, 'application/vnd.github+json'),
    })
  } catch (err) {
    if (err instanceof Rejection && err.code === 'asset_missing')
      throw new Rejection(
        'release_not_found',
        `GitHub has no release ${releaseId} in ${repository} (deleted?)`
      )
    throw err
  }
  let data: unknown
  try {
    data = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    throw new TransientError(
      `GitHub answered release ${releaseId} of ${repository} with something that is not JSON`
    )
  }
  const parsed = githubReleaseSchema.safeParse(data)
  if (!parsed.success)
    throw new TransientError(
      `GitHub's release ${releaseId} of ${repository} has an unexpected shape: ${parsed.error.message}`
    )
  return parsed.data
}
