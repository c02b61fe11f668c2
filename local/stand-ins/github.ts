/**
 * A local stand-in for GitHub, speaking the shapes of its REST API for the fixture modules
 * (test/fixtures/foundry): releases, their assets, asset downloads (API form with
 * `Accept: application/octet-stream` and browser_download_url form, both redirecting to the bytes
 * as GitHub does), plus `releaseDelivery()`, which builds and signs a `release` webhook delivery as
 * GitHub would send it. Releases are registered with the stand-in (`addRelease`, or
 * `POST /_control/releases` from another process); the octokit example release the delivery
 * fixtures name (Codertocat/Hello-World #17372790, tag 0.0.1) is there from the start.
 *
 * A release spec can also ask for trouble — a zip bomb, `../` paths, a module.json that disagrees,
 * assets on another host, a slow download — so the release service's defences can be exercised.
 */
import { createHmac, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { zipSync, type Zippable } from 'fflate'
import { sign } from '@octokit/webhooks-methods'
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
      'X-GitHub-Hook-Installation-Target-Type': 'repository',
      'X-GitHub-Hook-Installation-Target-ID': String(spec.repositoryId),
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
  addRelease(spec: ReleaseSpecInput): ReleaseSpec
  /** releaseDelivery() for this stand-in, with the release registered. */
  delivery(fixture: FixtureName, opts?: Omit<DeliveryOptions, 'gitHubUrl'>): Promise<Delivery>
  /** Every request served so far. */
  requests(): Array<{ method: string; path: string; at: number }>
  stop(): Promise<void>
}

const notFound = { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' }

export async function startGitHubStandIn(
  opts: { host?: string; port?: number } = {}
): Promise<GitHubStandIn> {
  const releases = new Map<number, ReleaseSpec>()
  const slowServed = new Set<number>()
  const log: Array<{ method: string; path: string; at: number }> = []
  let url = ''

  const addRelease = (input: ReleaseSpecInput) => {
    const spec = releaseSpecSchema.parse(input)
    releases.set(spec.releaseId, spec)
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
  })

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
    res.end(JSON.stringify(body))
  }
  const findRelease = (owner: string, repo: string, id: string) => {
    const spec = releases.get(Number(id))
    return spec && spec.owner === owner && spec.repo === repo ? spec : undefined
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

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://stand-in').pathname
    log.push({ method: req.method ?? 'GET', path, at: Date.now() })
    let m: RegExpMatchArray | null
    if (req.method === 'POST' && path === '/_control/releases') {
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      try {
        const spec = addRelease(JSON.parse(Buffer.concat(chunks).toString('utf8')))
        return json(res, 201, { releaseId: spec.releaseId })
      } catch (err) {
        return json(res, 400, { message: (err as Error).message })
      }
    }
    if (req.method === 'GET' && path === '/_control/requests') return json(res, 200, log)
    if (req.method !== 'GET') return json(res, 404, notFound)
    if ((m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/releases\/(\d+)$/))) {
      const spec = findRelease(m[1]!, m[2]!, m[3]!)
      return spec ? json(res, 200, releaseJson(url, spec, assetSizes(spec))) : json(res, 404, notFound)
    }
    if ((m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/releases\/(\d+)\/assets$/))) {
      const spec = findRelease(m[1]!, m[2]!, m[3]!)
      return spec ? json(res, 200, releaseJson(url, spec, assetSizes(spec)).assets) : json(res, 404, notFound)
    }
    if ((m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/releases\/assets\/(\d+)$/))) {
      const found = findAsset(Number(m[3]))
      if (!found || found.spec.owner !== m[1] || found.spec.repo !== m[2]) return json(res, 404, notFound)
      // As GitHub: the API form redirects to storage when asked for the bytes.
      if ((req.headers.accept ?? '').includes('application/octet-stream')) {
        res.writeHead(302, { location: `${url}/_objects/${m[3]}` })
        return void res.end()
      }
      const asset = releaseJson(url, found.spec, assetSizes(found.spec)).assets.find(
        (a: { id: number }) => a.id === Number(m![3])
      )
      return json(res, 200, asset)
    }
    if ((m = path.match(/^\/([^/]+)\/([^/]+)\/releases\/download\/([^/]+)\/([^/]+)$/))) {
      const spec = [...releases.values()].find(
        (s) => s.owner === m![1] && s.repo === m![2] && s.tag === decodeURIComponent(m![3]!)
      )
      const kind = m[4] === 'module.json' ? 'manifest' : m[4] === 'module.zip' ? 'zip' : null
      if (!spec || !kind || (kind === 'manifest' && !spec.manifestAsset)) return json(res, 404, notFound)
      const id = kind === 'manifest' ? manifestAssetId(spec.releaseId) : zipAssetId(spec.releaseId)
      res.writeHead(302, { location: `${url}/_objects/${id}` })
      return void res.end()
    }
    if ((m = path.match(/^\/_objects\/(\d+)$/))) {
      const found = findAsset(Number(m[1]))
      if (!found) return json(res, 404, notFound)
      return serveBytes(res, found.spec, found.kind)
    }
    return json(res, 404, notFound)
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
    addRelease,
    async delivery(fixture, o = {}) {
      const d = await releaseDelivery(fixture, { ...o, gitHubUrl: url })
      releases.set(d.spec.releaseId, d.spec)
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
