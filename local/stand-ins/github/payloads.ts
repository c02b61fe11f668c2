/**
 * GitHub's JSON shapes, as its REST API and its webhook payloads carry them, derived from the
 * octokit example delivery (so every field GitHub sends is there): a release and its assets, a
 * repository, an App installation, and the error bodies.
 */
import { exampleDelivery } from './fixtures.ts'
import { manifestAssetId, zipAssetId, type ReleaseSpec } from './spec.ts'

/** A repository the stand-in knows, and the App installation that covers it. */
export interface Repository {
  id: number
  owner: string
  repo: string
  installationId: number
}

export const notFound = {
  message: 'Not Found',
  documentation_url: 'https://docs.github.com/rest',
  status: '404',
}
export const undecodableJwt = {
  message: 'A JSON web token could not be decoded',
  documentation_url: 'https://docs.github.com/rest',
}

function assetJson(base: string, spec: ReleaseSpec, kind: 'manifest' | 'zip', size: number) {
  const id = kind === 'manifest' ? manifestAssetId(spec.releaseId) : zipAssetId(spec.releaseId)
  const name = kind === 'manifest' ? 'module.json' : 'module.zip'
  return {
    url: `${base}/repos/${spec.owner}/${spec.repo}/releases/assets/${id}`,
    id,
    node_id: Buffer.from(`ReleaseAsset${id}`).toString('base64'),
    name,
    label: '',
    uploader: exampleDelivery().release.author,
    content_type: kind === 'manifest' ? 'application/json' : 'application/zip',
    state: 'uploaded',
    size,
    download_count: 0,
    created_at: '2024-01-01T00:00:00Z',
    updated_at: '2024-01-01T00:00:00Z',
    browser_download_url: `${base}/${spec.owner}/${spec.repo}/releases/download/${encodeURIComponent(spec.tag)}/${name}`,
  }
}

/** The release object GitHub's API (and the webhook payload) carries. */
export function releaseJson(gitHubUrl: string, spec: ReleaseSpec, sizes?: { manifest: number; zip: number }) {
  const base = (spec.assetBaseUrl ?? gitHubUrl).replace(/\/+$/, '')
  const api = gitHubUrl.replace(/\/+$/, '')
  const t = exampleDelivery().release
  const assets = [
    ...(spec.manifestAsset ? [assetJson(base, spec, 'manifest', sizes?.manifest ?? 0)] : []),
    assetJson(base, spec, 'zip', sizes?.zip ?? 0),
  ]
  return {
    ...t,
    url: `${api}/repos/${spec.owner}/${spec.repo}/releases/${spec.releaseId}`,
    assets_url: `${api}/repos/${spec.owner}/${spec.repo}/releases/${spec.releaseId}/assets`,
    upload_url: `${api}/repos/${spec.owner}/${spec.repo}/releases/${spec.releaseId}/assets{?name,label}`,
    html_url: `https://github.com/${spec.owner}/${spec.repo}/releases/tag/${encodeURIComponent(spec.tag)}`,
    id: spec.releaseId,
    node_id: Buffer.from(`Release${spec.releaseId}`).toString('base64'),
    tag_name: spec.tag,
    name: spec.tag,
    created_at: spec.publishedAt ?? t.created_at,
    published_at: spec.draft ? null : (spec.publishedAt ?? t.published_at),
    draft: spec.draft,
    prerelease: spec.prerelease,
    assets,
    tarball_url: `${api}/repos/${spec.owner}/${spec.repo}/tarball/${encodeURIComponent(spec.tag)}`,
    zipball_url: `${api}/repos/${spec.owner}/${spec.repo}/zipball/${encodeURIComponent(spec.tag)}`,
    body: spec.notes,
  }
}

/** The repository object of the REST API (`apiUrl`: the stand-in's base URL). */
export const repositoryJson = (apiUrl: string, r: Repository) => ({
  ...exampleDelivery().repository,
  id: r.id,
  node_id: Buffer.from(`Repository${r.id}`).toString('base64'),
  name: r.repo,
  full_name: `${r.owner}/${r.repo}`,
  owner: { ...exampleDelivery().repository.owner, login: r.owner },
  private: false,
  html_url: `https://github.com/${r.owner}/${r.repo}`,
  url: `${apiUrl}/repos/${r.owner}/${r.repo}`,
})

/** The App's installation that covers a repository (`GET /repos/{owner}/{repo}/installation`). */
export const installationJson = (appId: number, r: Repository) => ({
  id: r.installationId,
  app_id: appId,
  account: { login: r.owner },
  repository_selection: 'selected',
  permissions: { contents: 'read', metadata: 'read' },
  events: ['release'],
})
