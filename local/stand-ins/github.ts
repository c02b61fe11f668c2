/**
 * A local stand-in for GitHub, speaking the shapes of its REST API for the fixture modules
 * (test/fixtures/foundry): repositories and releases by name and by numeric id
 * (`/repositories/{id}/releases/{release_id}`), their assets, asset downloads (API form with
 * `Accept: application/octet-stream` and browser_download_url form, both redirecting to the bytes
 * as GitHub does), plus `releaseDelivery()`, which builds and signs a `release` webhook delivery as
 * GitHub would send it to a GitHub App (with `installation.id`).
 *
 * It is the GitHub App's side too: one App (id and RSA key pair, generated unless given) installed
 * on every owner's repositories (one installation per owner). `POST /app/installations/{id}/access_tokens`
 * takes an RS256 App JWT (iss = app id, at most 10 minutes long, checked with jose) and returns an
 * installation token that expires; such a token sees only its installation's repositories (404 for
 * any other, as GitHub). `GET /repos/{owner}/{repo}/installation` and `/repositories/{id}/installation`
 * take the App JWT. API answers carry GitHub's rate-limit headers (5,000 an hour per token);
 * `POST /_control/rate-limit {"seconds": n}` makes every answer 403 (or 429) "rate limited" for
 * n seconds, with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` at the end, as GitHub does.
 * Anonymous reads of these (public) repositories are served, as GitHub does. Releases are registered with the stand-in (`addRelease`, or
 * `POST /_control/releases` from another process); the octokit example release the delivery
 * fixtures name (Codertocat/Hello-World #17372790, tag 0.0.1) is there from the start.
 *
 * A release spec can also ask for trouble — a zip bomb, `../` paths, a module.json that disagrees,
 * assets on another host, a slow download — so the release service's defences can be exercised.
 */
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
} from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { zipSync, type Zippable } from 'fflate'
import { sign } from '@octokit/webhooks-methods'
import { jwtVerify, type KeyObject as JoseKey } from 'jose'
import { z } from 'zod'

const fixturesDir = join(import.meta.dirname, '..', '..', 'test', 'fixtures')
const readFixture = (path: string) => readFileSync(join(fixturesDir, path), 'utf8')

/** GitHub's documented test secret; the signed delivery fixtures use it too. */
export const GITHUB_TEST_SECRET = "It's a Secret to Everybody"

/**
 * The modules the stand-in can release: a real manifest each, and the repository it comes from.
 * Repository ids are synthetic except Hello-World's (the octokit example).
 */
export const fixtureModules = {
  'hello-world': {
    manifest: 'foundry/forgevtt-test/test-module.module.json',
    patch: { id: 'hello-world', title: 'Hello World' },
    owner: 'Codertocat',
    repo: 'Hello-World',
    repositoryId: 186853002,
  },
  'test-module': {
    manifest: 'foundry/forgevtt-test/test-module.module.json',
    patch: {},
    owner: 'ForgeVTT',
    repo: 'test-foundry-modules',
    repositoryId: 900_000_001,
  },
  'ddb-importer': {
    manifest: 'foundry/ddb-importer/module.7.4.1.release.json',
    patch: {},
    owner: 'MrPrimate',
    repo: 'ddb-importer',
    repositoryId: 900_000_002,
  },
  'item-piles': {
    manifest: 'foundry/item-piles/module.json',
    patch: {},
    owner: 'fantasycalendar',
    repo: 'FoundryVTT-ItemPiles',
    repositoryId: 900_000_003,
  },
  'lib-wrapper': {
    manifest: 'foundry/lib-wrapper/module.json',
    patch: {},
    owner: 'ruipin',
    repo: 'fvtt-lib-wrapper',
    repositoryId: 900_000_004,
  },
  'vtta-core': {
    manifest: 'foundry/vtta/vtta-core.2.0.3.module.json',
    patch: {},
    owner: 'VTTAssets',
    repo: 'vtta-core',
    repositoryId: 900_000_005,
  },
} as const satisfies Record<
  string,
  { manifest: string; patch: Record<string, unknown>; owner: string; repo: string; repositoryId: number }
>
export type FixtureName = keyof typeof fixtureModules
export const fixtureNames = Object.keys(fixtureModules) as FixtureName[]

/** The stand-in's GitHub App id (the local platform's GITHUB_APP_ID). */
export const STAND_IN_APP_ID = 1_000_001

/**
 * The App's installation on an owner's repositories: one per owner. Codertocat's is 1, as in the
 * octokit example payload (release/deleted) the delivery fixtures take `installation` from.
 */
export function installationIdFor(owner: string): number {
  if (owner === 'Codertocat') return 1
  let h = 0x811c9dc5
  for (const c of owner.toLowerCase()) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0
  return 2 + (h % 90_000_000)
}

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

const manifestAssetId = (releaseId: number) => releaseId * 10 + 1
const zipAssetId = (releaseId: number) => releaseId * 10 + 2
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

let templateText: string | undefined
/** A fresh copy of the octokit example delivery the payloads are derived from. */
const template = () =>
  JSON.parse((templateText ??= readFixture('github/deliveries/release-published/body.json'))) as Record<
    string,
    any
  >

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

const ZIP_MTIME = new Date('2024-01-01T00:00:00Z')

/** The release's zip, built with fflate from the manifest and a small script per esmodule. */
export function releaseZip(spec: ReleaseSpec): Uint8Array {
  const manifest = releaseManifest(spec, true)
  const id = String(manifest.id ?? manifest.name ?? spec.fixture)
  const scripts = (
    Array.isArray(manifest.esmodules) ? (manifest.esmodules as string[]) : ['scripts/module.js']
  ).map((p) => p.replace(/^\.\//, ''))
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

/** Rewrites an entry's declared uncompressed size in its local and central headers: a lying zip. */
function declareSize(zip: Uint8Array, name: string, size: number): void {
  const buf = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength)
  const target = Buffer.from(name)
  for (let p = 0; p < buf.length - 46; p++) {
    const sig = buf.readUInt32LE(p)
    if (sig === 0x04034b50 && buf.subarray(p + 30, p + 30 + target.length).equals(target))
      buf.writeUInt32LE(size, p + 22)
    if (sig === 0x02014b50 && buf.subarray(p + 46, p + 46 + target.length).equals(target))
      buf.writeUInt32LE(size, p + 24)
  }
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
    uploader: template().release.author,
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
  const t = template().release
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

export interface DeliveryOptions extends Partial<Omit<ReleaseSpecInput, 'fixture'>> {
  /** The stand-in's base URL (asset URLs point there). */
  gitHubUrl: string
  action?: string
  deliveryId?: string
  secret?: string
  hookId?: number
  /** The delivery's `installation.id` (default: the App's installation on the owner's repositories). */
  installationId?: number
  /** The App the delivery comes from (X-GitHub-Hook-Installation-Target-ID). */
  appId?: number
  /** Last word on the payload, e.g. to drop `release` for a bad-input test. */
  mutate?: (payload: Record<string, any>) => unknown
}

export interface Delivery {
  spec: ReleaseSpec
  deliveryId: string
  /** Exactly the headers GitHub sends (names as GitHub spells them). */
  headers: Record<string, string>
  /** The exact signed bytes. */
  body: string
}

/**
 * Sends a delivery to the edge's webhook endpoint as GitHub does. Content-Length is left to fetch,
 * which sets it from the body (and refuses one given by hand).
 */
export function postDelivery(
  edgeUrl: string,
  delivery: Pick<Delivery, 'headers' | 'body'>,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {}
): Promise<Response> {
  const { 'Content-Length': _length, ...headers } = delivery.headers
  return fetch(`${edgeUrl}/webhooks/github`, {
    method: 'POST',
    headers: { ...headers, ...init.headers },
    body: delivery.body,
    signal: init.signal,
  })
}

/** A `release` delivery for a fixture module, signed (X-Hub-Signature-256) as GitHub does. */
export async function releaseDelivery(fixture: FixtureName, opts: DeliveryOptions): Promise<Delivery> {
  const module = fixtureModules[fixture]
  if (!module) throw new Error(`unknown fixture module "${fixture}" (known: ${fixtureNames.join(', ')})`)
  const version = opts.version ?? '1.0.0'
  const repositoryId = opts.repositoryId ?? module.repositoryId
  const spec = releaseSpecSchema.parse({
    fixture,
    owner: opts.owner ?? module.owner,
    repo: opts.repo ?? module.repo,
    repositoryId,
    releaseId: opts.releaseId ?? releaseIdFor(repositoryId, version),
    tag: opts.tag ?? `v${version}`,
    version,
    prerelease: opts.prerelease ?? false,
    draft: opts.draft,
    notes: opts.notes ?? `## What's Changed\n- ${module.repo} ${version}`,
    manifestPatch: opts.manifestPatch,
    zipManifestPatch: opts.zipManifestPatch,
    zip: opts.zip,
    manifestAsset: opts.manifestAsset,
    assetBaseUrl: opts.assetBaseUrl,
    slowZipMs: opts.slowZipMs,
    slowOnce: opts.slowOnce,
    publishedAt: opts.publishedAt ?? new Date().toISOString(),
  })
  const t = template()
  const action = opts.action ?? (spec.prerelease ? 'prereleased' : 'published')
  const payload: Record<string, any> = {
    ...t,
    action,
    release: releaseJson(opts.gitHubUrl, spec, assetSizes(spec)),
    repository: {
      ...t.repository,
      id: spec.repositoryId,
      node_id: Buffer.from(`Repository${spec.repositoryId}`).toString('base64'),
      name: spec.repo,
      full_name: `${spec.owner}/${spec.repo}`,
      html_url: `https://github.com/${spec.owner}/${spec.repo}`,
      url: `https://api.github.com/repos/${spec.owner}/${spec.repo}`,
    },
    // As in GitHub App deliveries (octokit's release/deleted example carries the same shape).
    installation: {
      id: opts.installationId ?? installationIdFor(spec.owner),
      node_id: Buffer.from(
        `023:IntegrationInstallation${opts.installationId ?? installationIdFor(spec.owner)}`
      ).toString('base64'),
    },
  }
  const finalPayload = opts.mutate ? (opts.mutate(payload) ?? payload) : payload
  const body = typeof finalPayload === 'string' ? finalPayload : JSON.stringify(finalPayload)
  const deliveryId = opts.deliveryId ?? randomUUID()
  const secret = opts.secret ?? GITHUB_TEST_SECRET
  return {
    spec,
    deliveryId,
    body,
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': 'GitHub-Hookshot/044aadd',
      'X-GitHub-Event': 'release',
      'X-GitHub-Delivery': deliveryId,
      'X-GitHub-Hook-ID': String(opts.hookId ?? 292430182),
      'X-GitHub-Hook-Installation-Target-Type': 'integration',
      'X-GitHub-Hook-Installation-Target-ID': String(opts.appId ?? STAND_IN_APP_ID),
      'X-Hub-Signature': `sha1=${createHmac('sha1', secret).update(body).digest('hex')}`,
      'X-Hub-Signature-256': await sign(secret, body),
      'Content-Length': String(Buffer.byteLength(body)),
    },
  }
}

const sizeCache = new Map<
  string,
  { manifest: number; zip: number; bytes: { manifest: Buffer; zip: Uint8Array } }
>()

function assets(spec: ReleaseSpec) {
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
const assetSizes = (spec: ReleaseSpec) => {
  const a = assets(spec)
  return { manifest: a.manifest, zip: a.zip }
}

/** Registers a release with a stand-in running in another process (`POST /_control/releases`). */
export async function registerRelease(gitHubUrl: string, spec: ReleaseSpecInput): Promise<void> {
  const res = await fetch(`${gitHubUrl.replace(/\/+$/, '')}/_control/releases`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  })
  if (!res.ok) throw new Error(`GitHub stand-in refused the release: HTTP ${res.status} ${await res.text()}`)
}

export interface GitHubStandIn {
  url: string
  /** The App this stand-in is: its id and private key (PEM), what the release service is given. */
  app: { id: number; privateKey: string }
  addRelease(spec: ReleaseSpecInput): ReleaseSpec
  /** GitHub no longer serves this release (404), as after the author deleted it. */
  removeRelease(releaseId: number): void
  /** Every installation token stops working (401), as when GitHub revokes them. */
  revokeTokens(): void
  /** API answers are rate-limited for `seconds` (`status`, remaining 0, reset at the end). */
  rateLimit(o: { seconds: number; status?: 403 | 429; retryAfter?: number }): void
  /** releaseDelivery() for this stand-in, with the release registered. */
  delivery(fixture: FixtureName, opts?: Omit<DeliveryOptions, 'gitHubUrl'>): Promise<Delivery>
  /** Every request served so far; `auth`: `installation:<id>`, `app`, `none` or `invalid`. */
  requests(): Array<{ method: string; path: string; at: number; auth: string }>
  stop(): Promise<void>
}

const notFound = { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' }

export interface GitHubStandInOptions {
  host?: string
  port?: number
  /** The App's id and private key (PEM); default: STAND_IN_APP_ID and a key generated now. */
  app?: { id: number; privateKey: string }
  /** Lifetime of installation tokens (GitHub: one hour). */
  tokenTtlMs?: number
}

/** A fresh App private key (RSA 2048, PKCS#8 PEM), as GitHub generates one for an App. */
export function generateAppPrivateKey(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string
}

interface Repository {
  id: number
  owner: string
  repo: string
  installationId: number
}

const RATE_LIMIT = 5000
const HOUR_MS = 3_600_000

export async function startGitHubStandIn(opts: GitHubStandInOptions = {}): Promise<GitHubStandIn> {
  const app = opts.app ?? { id: STAND_IN_APP_ID, privateKey: generateAppPrivateKey() }
  const appPublicKey = createPublicKey(createPrivateKey(app.privateKey)) as unknown as JoseKey
  const tokenTtlMs = opts.tokenTtlMs ?? HOUR_MS
  const releases = new Map<number, ReleaseSpec>()
  const repositories = new Map<number, Repository>()
  const tokens = new Map<string, { installationId: number; expiresAt: number }>()
  /** Per token (or "anonymous"): requests counted in the current hour. */
  const budgets = new Map<string, { used: number; resetAt: number }>()
  let limited: { until: number; status: 403 | 429; retryAfter?: number } | null = null
  const limitFor = (o: { seconds: number; status?: 403 | 429; retryAfter?: number }) => {
    limited = { until: Date.now() + o.seconds * 1000, status: o.status ?? 403, retryAfter: o.retryAfter }
  }
  const slowServed = new Set<number>()
  const log: Array<{ method: string; path: string; at: number; auth: string }> = []
  let url = ''

  const addRepository = (id: number, owner: string, repo: string) =>
    repositories.set(id, { id, owner, repo, installationId: installationIdFor(owner) })
  for (const m of Object.values(fixtureModules)) addRepository(m.repositoryId, m.owner, m.repo)

  const addRelease = (input: ReleaseSpecInput) => {
    const parsed = releaseSpecSchema.parse(input)
    const spec = { ...parsed, publishedAt: parsed.publishedAt ?? new Date().toISOString() }
    releases.set(spec.releaseId, spec)
    addRepository(spec.repositoryId, spec.owner, spec.repo)
    return spec
  }
  addRelease({
    fixture: 'hello-world',
    owner: 'Codertocat',
    repo: 'Hello-World',
    repositoryId: 186853002,
    releaseId: 17372790,
    tag: '0.0.1',
    version: '0.0.1',
    prerelease: false,
    notes: '',
    // The octokit example release's own date.
    publishedAt: '2019-05-15T15:20:53Z',
  })

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
    res.end(JSON.stringify(body))
  }

  type Auth =
    | { kind: 'none' }
    | { kind: 'installation'; token: string; installationId: number }
    | { kind: 'app' }
    | { kind: 'invalid'; message: string }
  /** Who is calling: an installation token, the App (a valid App JWT), nobody, or bad credentials. */
  const authOf = async (req: IncomingMessage): Promise<Auth> => {
    const m = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    if (!m)
      return req.headers.authorization ? { kind: 'invalid', message: 'Bad credentials' } : { kind: 'none' }
    const credential = m[1]!
    const token = tokens.get(credential)
    if (token)
      return token.expiresAt > Date.now()
        ? { kind: 'installation', token: credential, installationId: token.installationId }
        : { kind: 'invalid', message: 'Bad credentials' }
    if (credential.split('.').length !== 3) return { kind: 'invalid', message: 'Bad credentials' }
    try {
      const { payload } = await jwtVerify(credential, appPublicKey, { algorithms: ['RS256'] })
      const now = Math.floor(Date.now() / 1000)
      // GitHub's examples (and octokit) write iss as a number.
      if (String(payload.iss) !== String(app.id))
        return { kind: 'invalid', message: "'Issuer' claim ('iss') must be the App id" }
      // GitHub: at most 10 minutes into the future.
      if (typeof payload.exp !== 'number' || payload.exp > now + 600)
        return { kind: 'invalid', message: "'Expiration time' claim ('exp') is too far in the future" }
      return { kind: 'app' }
    } catch {
      return { kind: 'invalid', message: 'A JSON web token could not be decoded' }
    }
  }
  const authLabel = (a: Auth) => (a.kind === 'installation' ? `installation:${a.installationId}` : a.kind)

  /** GitHub's rate-limit headers for this caller's budget, counting this request. */
  const rateHeaders = (a: Auth): Record<string, string> => {
    const key = a.kind === 'installation' ? a.token : 'anonymous'
    let budget = budgets.get(key)
    if (!budget || budget.resetAt <= Date.now())
      budgets.set(key, (budget = { used: 0, resetAt: Date.now() + HOUR_MS }))
    budget.used++
    return {
      'x-ratelimit-limit': String(RATE_LIMIT),
      'x-ratelimit-remaining': String(Math.max(0, RATE_LIMIT - budget.used)),
      'x-ratelimit-reset': String(Math.ceil(budget.resetAt / 1000)),
      'x-ratelimit-used': String(budget.used),
      'x-ratelimit-resource': 'core',
    }
  }

  /** The repository as this caller may see it: an installation token sees only its own. */
  const visible = (a: Auth, repo: Repository | undefined) =>
    repo && (a.kind !== 'installation' || a.installationId === repo.installationId) ? repo : undefined
  const byName = (owner: string, name: string) =>
    [...repositories.values()].find((r) => r.owner === owner && r.repo === name)

  const repositoryJson = (r: Repository) => ({
    ...template().repository,
    id: r.id,
    node_id: Buffer.from(`Repository${r.id}`).toString('base64'),
    name: r.repo,
    full_name: `${r.owner}/${r.repo}`,
    owner: { ...template().repository.owner, login: r.owner },
    private: false,
    html_url: `https://github.com/${r.owner}/${r.repo}`,
    url: `${url}/repos/${r.owner}/${r.repo}`,
  })
  const installationJson = (r: Repository) => ({
    id: r.installationId,
    app_id: app.id,
    account: { login: r.owner },
    repository_selection: 'selected',
    permissions: { contents: 'read', metadata: 'read' },
    events: ['release'],
  })

  const findRelease = (repo: Repository | undefined, id: string) => {
    const spec = releases.get(Number(id))
    return repo && spec && spec.repositoryId === repo.id ? spec : undefined
  }
  const findAsset = (assetId: number) => {
    const spec = releases.get(Math.floor(assetId / 10))
    if (!spec) return undefined
    if (assetId === manifestAssetId(spec.releaseId) && spec.manifestAsset)
      return { spec, kind: 'manifest' as const }
    if (assetId === zipAssetId(spec.releaseId)) return { spec, kind: 'zip' as const }
    return undefined
  }

  const serveBytes = async (res: ServerResponse, spec: ReleaseSpec, kind: 'manifest' | 'zip') => {
    const bytes = assets(spec).bytes[kind]
    res.writeHead(200, {
      'content-type': kind === 'manifest' ? 'application/json' : 'application/zip',
      'content-length': String(bytes.length),
    })
    const slow = kind === 'zip' && spec.slowZipMs > 0 && !(spec.slowOnce && slowServed.has(spec.releaseId))
    if (!slow) return void res.end(bytes)
    slowServed.add(spec.releaseId)
    const half = Math.floor(bytes.length / 2)
    res.write(bytes.subarray(0, half))
    await new Promise((r) => setTimeout(r, spec.slowZipMs))
    if (!res.destroyed) res.end(bytes.subarray(half))
  }

  const readJson = async (req: IncomingMessage) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as unknown
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://stand-in').pathname
    const auth = path.startsWith('/_') ? ({ kind: 'none' } as Auth) : await authOf(req)
    log.push({ method: req.method ?? 'GET', path, at: Date.now(), auth: authLabel(auth) })
    let m: RegExpMatchArray | null
    if (req.method === 'POST' && path === '/_control/releases') {
      try {
        const spec = addRelease((await readJson(req)) as ReleaseSpecInput)
        return json(res, 201, { releaseId: spec.releaseId })
      } catch (err) {
        return json(res, 400, { message: (err as Error).message })
      }
    }
    if (req.method === 'DELETE' && (m = path.match(/^\/_control\/releases\/(\d+)$/))) {
      releases.delete(Number(m[1]))
      return json(res, 200, { deleted: Number(m[1]) })
    }
    if (req.method === 'POST' && path === '/_control/rate-limit') {
      const o = z
        .object({
          seconds: z.number().min(0).max(3600),
          status: z.union([z.literal(403), z.literal(429)]).default(403),
          retryAfter: z.number().int().min(0).optional(),
        })
        .safeParse(await readJson(req).catch(() => null))
      if (!o.success) return json(res, 400, { message: o.error.message })
      limitFor(o.data)
      return json(res, 200, o.data)
    }
    if (req.method === 'GET' && path === '/_control/requests') return json(res, 200, log)
    if ((m = path.match(/^\/_objects\/(\d+)$/)) && req.method === 'GET') {
      const found = findAsset(Number(m[1]))
      if (!found) return json(res, 404, notFound)
      return serveBytes(res, found.spec, found.kind)
    }
    if (
      (m = path.match(/^\/([^/]+)\/([^/]+)\/releases\/download\/([^/]+)\/([^/]+)$/)) &&
      req.method === 'GET'
    ) {
      const spec = [...releases.values()].find(
        (s) => s.owner === m![1] && s.repo === m![2] && s.tag === decodeURIComponent(m![3]!)
      )
      const kind = m[4] === 'module.json' ? 'manifest' : m[4] === 'module.zip' ? 'zip' : null
      if (!spec || !kind || (kind === 'manifest' && !spec.manifestAsset)) return json(res, 404, notFound)
      const id = kind === 'manifest' ? manifestAssetId(spec.releaseId) : zipAssetId(spec.releaseId)
      res.writeHead(302, { location: `${url}/_objects/${id}` })
      return void res.end()
    }

    // The REST API from here on.
    if (auth.kind === 'invalid')
      return json(res, 401, { message: auth.message, documentation_url: 'https://docs.github.com/rest' })
    if (req.method === 'POST' && (m = path.match(/^\/app\/installations\/(\d+)\/access_tokens$/))) {
      if (auth.kind !== 'app')
        return json(res, 401, {
          message: 'A JSON web token could not be decoded',
          documentation_url: 'https://docs.github.com/rest',
        })
      const installationId = Number(m[1])
      if (![...repositories.values()].some((r) => r.installationId === installationId))
        return json(res, 404, notFound)
      const token = `ghs_${randomBytes(18).toString('base64url')}`
      const expiresAt = Date.now() + tokenTtlMs
      tokens.set(token, { installationId, expiresAt })
      return json(res, 201, {
        token,
        expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        permissions: { contents: 'read', metadata: 'read' },
        repository_selection: 'selected',
      })
    }
    if (req.method !== 'GET') return json(res, 404, notFound)
    const installationOf = (r: Repository | undefined) =>
      auth.kind !== 'app'
        ? json(res, 401, {
            message: 'A JSON web token could not be decoded',
            documentation_url: 'https://docs.github.com/rest',
          })
        : r
          ? json(res, 200, installationJson(r))
          : json(res, 404, notFound)
    if ((m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/installation$/)))
      return installationOf(byName(m[1]!, m[2]!))
    if ((m = path.match(/^\/repositories\/(\d+)\/installation$/)))
      return installationOf(repositories.get(Number(m[1])))
    if (auth.kind === 'app')
      return json(res, 403, {
        message: 'Resource not accessible by integration',
        documentation_url: 'https://docs.github.com/rest',
      })

    const headers = rateHeaders(auth)
    if (limited && limited.until <= Date.now()) limited = null
    if (limited) {
      const l = limited
      return json(
        res,
        l.status,
        { message: 'API rate limit exceeded', documentation_url: 'https://docs.github.com/rest/rate-limit' },
        {
          ...headers,
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(Math.ceil(l.until / 1000)),
          ...(l.retryAfter !== undefined ? { 'retry-after': String(l.retryAfter) } : {}),
        }
      )
    }
    const ok = (body: unknown) => json(res, 200, body, headers)
    const missing = () => json(res, 404, notFound, headers)
    // A repository by id or by name; then what is below it.
    let repo: Repository | undefined
    let rest: string
    if ((m = path.match(/^\/repositories\/(\d+)(\/.*)?$/))) {
      repo = visible(auth, repositories.get(Number(m[1])))
      rest = m[2] ?? ''
    } else if ((m = path.match(/^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/))) {
      repo = visible(auth, byName(m[1]!, m[2]!))
      rest = m[3] ?? ''
    } else return missing()
    if (!repo) return missing()
    if (rest === '') return ok(repositoryJson(repo))
    if ((m = rest.match(/^\/releases\/(\d+)$/))) {
      const spec = findRelease(repo, m[1]!)
      return spec ? ok(releaseJson(url, spec, assetSizes(spec))) : missing()
    }
    if ((m = rest.match(/^\/releases\/(\d+)\/assets$/))) {
      const spec = findRelease(repo, m[1]!)
      return spec ? ok(releaseJson(url, spec, assetSizes(spec)).assets) : missing()
    }
    if ((m = rest.match(/^\/releases\/assets\/(\d+)$/))) {
      const found = findAsset(Number(m[1]))
      if (!found || found.spec.repositoryId !== repo.id) return missing()
      // As GitHub: the API form redirects to storage when asked for the bytes.
      if ((req.headers.accept ?? '').includes('application/octet-stream')) {
        res.writeHead(302, { ...headers, location: `${url}/_objects/${m[1]}` })
        return void res.end()
      }
      const asset = releaseJson(url, found.spec, assetSizes(found.spec)).assets.find(
        (a: { id: number }) => a.id === Number(m![1])
      )
      return ok(asset)
    }
    return missing()
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { message: (err as Error).message })
      else res.destroy()
    })
  })
  // A client killed mid-download must not take the stand-in down.
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve())
  })
  const address = server.address() as AddressInfo
  url = `http://${address.address}:${address.port}`

  return {
    url,
    app,
    addRelease,
    removeRelease: (releaseId) => void releases.delete(releaseId),
    revokeTokens: () => tokens.clear(),
    rateLimit: limitFor,
    async delivery(fixture, o = {}) {
      const d = await releaseDelivery(fixture, { ...o, gitHubUrl: url })
      d.spec = addRelease(d.spec)
      return d
    },
    requests: () => [...log],
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
