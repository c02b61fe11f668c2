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
import type { ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
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
import { readJson, Router, sendJson, serveHttp, type Exchange } from '../http.ts'
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

  /** The repository as this caller may see it: an installation token sees only its own. */
  const visible = (a: Auth, repo: Repository | undefined) =>
    repo && (a.kind !== 'installation' || a.installationId === repo.installationId) ? repo : undefined
  const byName = (owner: string, name: string) =>
    [...repositories.values()].find((r) => r.owner === owner && r.repo === name)

  const findRelease = (repo: Repository, id: string) => {
    const spec = releases.get(Number(id))
    return spec && spec.repositoryId === repo.id ? spec : undefined
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
    await sleep(spec.slowZipMs)
    if (!res.destroyed) res.end(bytes.subarray(half))
  }

  /** `auth`: who is calling; `rate`: the rate-limit headers of the API answer (once counted). */
  const router = new Router<{ auth: Auth; rate: Record<string, string> }>(() => ({
    auth: { kind: 'none' },
    rate: {},
  }))
  const ok = (x: Exchange<{ rate: Record<string, string> }>, body: unknown) =>
    sendJson(x.res, 200, body, x.state.rate)
  const missing = (x: Exchange<{ rate: Record<string, string> }>) =>
    sendJson(x.res, 404, notFound, x.state.rate)

  // Every request is logged with its caller; the control and download routes take no credentials.
  router.use(async (x, next) => {
    const path = x.url.pathname
    if (!path.startsWith('/_')) x.state.auth = await authority.authOf(x.req.headers.authorization)
    log.push({ method: x.req.method ?? 'GET', path, at: Date.now(), auth: authLabel(x.state.auth) })
    return next()
  })

  router.post('/_control/releases', async ({ req, res }) => {
    const spec = releaseSpecSchema.safeParse(await readJson(req))
    if (!spec.success) return sendJson(res, 400, { message: spec.error.message })
    sendJson(res, 201, { releaseId: addRelease(spec.data).releaseId })
  })
  router.delete('/_control/releases/:id(\\d+)', ({ res, params }) => {
    releases.delete(Number(params.id))
    sendJson(res, 200, { deleted: Number(params.id) })
  })
  router.post('/_control/rate-limit', async ({ req, res }) => {
    const o = z
      .object({
        seconds: z.number().min(0).max(3600),
        status: z.union([z.literal(403), z.literal(429)]).default(403),
        retryAfter: z.number().int().min(0).optional(),
      })
      .safeParse(await readJson(req))
    if (!o.success) return sendJson(res, 400, { message: o.error.message })
    limits.limitFor(o.data)
    sendJson(res, 200, o.data)
  })
  router.get('/_control/requests', ({ res }) => sendJson(res, 200, log))

  // Storage, where asset downloads are redirected to.
  router.get('/_objects/:id(\\d+)', async ({ res, params }) => {
    const found = findAsset(Number(params.id))
    if (!found) return sendJson(res, 404, notFound)
    await serveBytes(res, found.spec, found.kind)
  })
  router.get('/:owner/:repo/releases/download/:tag/:name', ({ res, params: p }) => {
    const spec = [...releases.values()].find(
      (s) => s.owner === p.owner && s.repo === p.repo && s.tag === decodeURIComponent(p.tag!)
    )
    const kind = p.name === 'module.json' ? 'manifest' : p.name === 'module.zip' ? 'zip' : null
    if (!spec || !kind || (kind === 'manifest' && !spec.manifestAsset)) return sendJson(res, 404, notFound)
    const id = kind === 'manifest' ? manifestAssetId(spec.releaseId) : zipAssetId(spec.releaseId)
    res.writeHead(302, { location: `${url}/_objects/${id}` }).end()
  })

  // The REST API from here on.
  router.use((x, next) =>
    x.state.auth.kind === 'invalid'
      ? sendJson(x.res, 401, {
          message: x.state.auth.message,
          documentation_url: 'https://docs.github.com/rest',
        })
      : next()
  )
  router.post('/app/installations/:id(\\d+)/access_tokens', ({ res, params, state }) => {
    if (state.auth.kind !== 'app') return sendJson(res, 401, undecodableJwt)
    const installationId = Number(params.id)
    if (![...repositories.values()].some((r) => r.installationId === installationId))
      return sendJson(res, 404, notFound)
    const { token, expiresAt } = authority.issueToken(installationId)
    sendJson(res, 201, {
      token,
      expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      permissions: { contents: 'read', metadata: 'read' },
      repository_selection: 'selected',
    })
  })
  router.use((x, next) => (x.req.method === 'GET' ? next() : sendJson(x.res, 404, notFound)))
  // An installation is looked up with the App JWT only.
  const installationOf = ({ res, state }: Exchange<{ auth: Auth }>, r: Repository | undefined) =>
    state.auth.kind !== 'app'
      ? sendJson(res, 401, undecodableJwt)
      : r
        ? sendJson(res, 200, installationJson(app.id, r))
        : sendJson(res, 404, notFound)
  router.get('/repos/:owner/:repo/installation', (x) =>
    installationOf(x, byName(x.params.owner!, x.params.repo!))
  )
  router.get('/repositories/:id(\\d+)/installation', (x) =>
    installationOf(x, repositories.get(Number(x.params.id)))
  )
  router.use((x, next) =>
    x.state.auth.kind === 'app'
      ? sendJson(x.res, 403, {
          message: 'Resource not accessible by integration',
          documentation_url: 'https://docs.github.com/rest',
        })
      : next()
  )
  router.use((x, next) => {
    x.state.rate = limits.headersFor(x.state.auth)
    const l = limits.current()
    if (!l) return next()
    return sendJson(
      x.res,
      l.status,
      { message: 'API rate limit exceeded', documentation_url: 'https://docs.github.com/rest/rate-limit' },
      {
        ...x.state.rate,
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.ceil(l.until / 1000)),
        ...(l.retryAfter !== undefined ? { 'retry-after': String(l.retryAfter) } : {}),
      }
    )
  })

  // A repository by id or by name, then what is below it.
  const repositoryRoutes: Array<[string, (p: Record<string, string>) => Repository | undefined]> = [
    ['/repositories/:id(\\d+)', (p) => repositories.get(Number(p.id))],
    ['/repos/:owner/:repo', (p) => byName(p.owner!, p.repo!)],
  ]
  for (const [prefix, find] of repositoryRoutes) {
    const repoOf = (x: Exchange<{ auth: Auth }>) => visible(x.state.auth, find(x.params))
    router.get(prefix, (x) => {
      const repo = repoOf(x)
      return repo ? ok(x, repositoryJson(url, repo)) : missing(x)
    })
    router.get(`${prefix}/releases/:release(\\d+)`, (x) => {
      const repo = repoOf(x)
      const spec = repo && findRelease(repo, x.params.release!)
      return spec ? ok(x, releaseJson(url, spec, assetSizes(spec))) : missing(x)
    })
    router.get(`${prefix}/releases/:release(\\d+)/assets`, (x) => {
      const repo = repoOf(x)
      const spec = repo && findRelease(repo, x.params.release!)
      return spec ? ok(x, releaseJson(url, spec, assetSizes(spec)).assets) : missing(x)
    })
    router.get(`${prefix}/releases/assets/:asset(\\d+)`, (x) => {
      const repo = repoOf(x)
      const assetId = Number(x.params.asset)
      const found = findAsset(assetId)
      if (!repo || !found || found.spec.repositoryId !== repo.id) return missing(x)
      // As GitHub: the API form redirects to storage when asked for the bytes.
      if ((x.req.headers.accept ?? '').includes('application/octet-stream'))
        return void x.res.writeHead(302, { ...x.state.rate, location: `${url}/_objects/${assetId}` }).end()
      ok(
        x,
        releaseJson(url, found.spec, assetSizes(found.spec)).assets.find((a) => a.id === assetId)
      )
    })
  }

  const http = await serveHttp((req, res) => router.handle(req, res, missing), {
    host: opts.host,
    port: opts.port,
  })
  url = http.url

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
    stop: () => http.close(),
  }
}
