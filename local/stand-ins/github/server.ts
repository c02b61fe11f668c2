/**
 * A local stand-in for GitHub, speaking the shapes of its REST API for the fixture modules
 * (test/fixtures/foundry): repositories and releases by name and by numeric id
 * (`/repositories/{id}/releases/{release_id}`), their assets, asset downloads (API form with
 * `Accept: application/octet-stream` and browser_download_url form, both redirecting to the bytes
 * as GitHub does).
 *
 * It is the GitHub App's side too (app.ts): `POST /app/installations/{id}/access_tokens` takes an
 * App JWT and returns an installation token that expires; such a token sees only its installation's
 * repositories (404 for any other, as GitHub). `GET /repos/{owner}/{repo}/installation` and
 * `/repositories/{id}/installation` take the App JWT. API answers carry GitHub's rate-limit headers
 * (rate-limit.ts); `POST /_control/rate-limit {"seconds": n}` makes every answer 403 (or 429) "rate
 * limited" for n seconds. Anonymous reads of these (public) repositories are served, as GitHub does.
 * Releases are registered with the stand-in (`addRelease`, or `POST /_control/releases` from another
 * process); the octokit example release the delivery fixtures name (Codertocat/Hello-World
 * #17372790, tag 0.0.1) is there from the start.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { z } from 'zod'
import {
  appAuthority,
  authLabel,
  generateAppPrivateKey,
  installationIdFor,
  STAND_IN_APP_ID,
  type Auth,
} from './app.ts'
import { assetSizes, assets } from './assets.ts'
import { releaseDelivery, type Delivery, type DeliveryOptions } from './delivery.ts'
import { fixtureModules, type FixtureName } from './fixtures.ts'
import {
  installationJson,
  notFound,
  releaseJson,
  repositoryJson,
  undecodableJwt,
  type Repository,
} from './payloads.ts'
import { HOUR_MS, rateLimits, type RateLimitWindow } from './rate-limit.ts'
import {
  manifestAssetId,
  releaseSpecSchema,
  zipAssetId,
  type ReleaseSpec,
  type ReleaseSpecInput,
} from './spec.ts'

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
  rateLimit(o: RateLimitWindow): void
  /** releaseDelivery() for this stand-in, with the release registered. */
  delivery(fixture: FixtureName, opts?: Omit<DeliveryOptions, 'gitHubUrl'>): Promise<Delivery>
  /** Every request served so far; `auth`: `installation:<id>`, `app`, `none` or `invalid`. */
  requests(): Array<{ method: string; path: string; at: number; auth: string }>
  stop(): Promise<void>
}

export interface GitHubStandInOptions {
  host?: string
  port?: number
  /** The App's id and private key (PEM); default: STAND_IN_APP_ID and a key generated now. */
  app?: { id: number; privateKey: string }
  /** Lifetime of installation tokens (GitHub: one hour). */
  tokenTtlMs?: number
}

export async function startGitHubStandIn(opts: GitHubStandInOptions = {}): Promise<GitHubStandIn> {
  const app = opts.app ?? { id: STAND_IN_APP_ID, privateKey: generateAppPrivateKey() }
  const authority = appAuthority(app, opts.tokenTtlMs ?? HOUR_MS)
  const limits = rateLimits()
  const releases = new Map<number, ReleaseSpec>()
  const repositories = new Map<number, Repository>()
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

  /** The repository as this caller may see it: an installation token sees only its own. */
  const visible = (a: Auth, repo: Repository | undefined) =>
    repo && (a.kind !== 'installation' || a.installationId === repo.installationId) ? repo : undefined
  const byName = (owner: string, name: string) =>
    [...repositories.values()].find((r) => r.owner === owner && r.repo === name)

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
    const auth = path.startsWith('/_')
      ? ({ kind: 'none' } as Auth)
      : await authority.authOf(req.headers.authorization)
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
      limits.limitFor(o.data)
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
      if (auth.kind !== 'app') return json(res, 401, undecodableJwt)
      const installationId = Number(m[1])
      if (![...repositories.values()].some((r) => r.installationId === installationId))
        return json(res, 404, notFound)
      const { token, expiresAt } = authority.issueToken(installationId)
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
        ? json(res, 401, undecodableJwt)
        : r
          ? json(res, 200, installationJson(app.id, r))
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

    const headers = limits.headersFor(auth)
    const l = limits.current()
    if (l) {
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
    if (rest === '') return ok(repositoryJson(url, repo))
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
    revokeTokens: authority.revokeTokens,
    rateLimit: limits.limitFor,
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
