/**
 * GitHub's API as the release service sees it: a GitHub App. It signs an App JWT with its private
 * key, trades it (@octokit/auth-app) for an installation access token of the delivery's
 * `installation.id`, and reads with `Authorization: token <installation token>`, so it sees only
 * the repositories that installation covers (any other answers 404, as GitHub does).
 *
 * Identity is read here and only here: the repository by its numeric id
 * (`GET /repositories/{id}`) and the release by repository id and release id
 * (`GET /repositories/{id}/releases/{release_id}`). A webhook payload's names are never used to fetch.
 *
 * Rate limits are read from every answer (`x-ratelimit-remaining`/`-reset`, 403/429 with
 * `retry-after`): a limited answer, or a call made while the installation's budget is spent, is a
 * TransientError carrying when to try again, which the work queue turns into a delayed retry.
 */
import { createAppAuth } from '@octokit/auth-app'
import { request } from '@octokit/request'
import { z } from 'zod'
import { errorDetail, Rejection, TransientError } from './errors.ts'

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
  id: z.number().int().positive(),
  tag_name: z.string().min(1).max(255),
  body: z.string().nullish(),
  draft: z.boolean(),
  prerelease: z.boolean(),
  html_url: z.url(),
  published_at: z.string().nullish(),
  author: z.object({ login: z.string().max(100) }).nullish(),
  assets: z.array(releaseAssetSchema).max(1000),
})
export type GitHubRelease = z.infer<typeof githubReleaseSchema>

export const githubRepositorySchema = z.object({
  id: z.number().int().positive(),
  full_name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/, 'must be owner/name')
    .refine((s) => !s.split('/').some((part) => part === '.' || part === '..'), 'must be owner/name'),
})
export type GitHubRepository = z.infer<typeof githubRepositorySchema>

export interface GitHubAppOptions {
  apiUrl: string
  appId: number
  /** PEM (PKCS#1 or PKCS#8) RSA private key of the App. */
  privateKey: string
  timeoutMs: number
}

export const githubRequestHeaders = (token: string | undefined, accept: string): Record<string, string> => ({
  accept,
  'user-agent': 'vtta.io-release-service',
  'x-github-api-version': '2022-11-28',
  ...(token ? { authorization: `token ${token}` } : {}),
})

const MAX_API_BYTES = 5 * 1024 * 1024
/** When GitHub says "limited" without saying until when. */
const DEFAULT_RETRY_MS = 60_000

/** The parts of an @octokit/request failure (RequestError) read here: its status and headers. */
const octokitFailureSchema = z.object({
  status: z.number().optional(),
  response: z
    .object({ headers: z.record(z.string(), z.union([z.string(), z.number()]).optional()) })
    .optional(),
})

function octokitFailure(err: unknown): { status: number | undefined; headers: Headers } {
  const parsed = octokitFailureSchema.safeParse(err)
  const headers = new Headers()
  if (!parsed.success) return { status: undefined, headers }
  for (const [name, value] of Object.entries(parsed.data.response?.headers ?? {}))
    if (value !== undefined) headers.set(name, String(value))
  return { status: parsed.data.status, headers }
}

/** How long to wait, from `retry-after` (seconds) or `x-ratelimit-reset` (epoch seconds) when spent. */
export function rateLimitWaitMs(status: number, headers: Headers, now = Date.now()): number | undefined {
  const retryAfter = Number(headers.get('retry-after') ?? NaN)
  if (Number.isFinite(retryAfter) && retryAfter >= 0) return retryAfter * 1000
  const remaining = Number(headers.get('x-ratelimit-remaining') ?? NaN)
  const reset = Number(headers.get('x-ratelimit-reset') ?? NaN)
  if (remaining === 0 && Number.isFinite(reset)) return Math.max(1_000, reset * 1000 - now)
  return status === 403 || status === 429 ? undefined : 0
}

export class GitHubApp {
  readonly apiUrl: string
  readonly timeoutMs: number
  readonly #auth: ReturnType<typeof createAppAuth>
  /** Per installation (and 0 for the App itself): no call before this time (the budget is spent). */
  readonly #blockedUntil = new Map<number, number>()

  constructor(o: GitHubAppOptions) {
    this.apiUrl = o.apiUrl.replace(/\/+$/, '')
    this.timeoutMs = o.timeoutMs
    this.#auth = createAppAuth({
      appId: o.appId,
      privateKey: o.privateKey,
      request: request.defaults({
        baseUrl: this.apiUrl,
        headers: { 'user-agent': 'vtta.io-release-service' },
        // A deadline per call (a signal made here would expire once, for every later call).
        request: {
          fetch: (url: string | URL, init?: RequestInit) =>
            fetch(url, { ...init, signal: AbortSignal.timeout(o.timeoutMs) }),
        },
      }),
    })
  }

  #checkBudget(installationId: number, what: string): void {
    const until = this.#blockedUntil.get(installationId) ?? 0
    const wait = until - Date.now()
    if (wait > 0)
      throw new TransientError(
        `${what}: GitHub's rate limit is spent until ${new Date(until).toISOString()}`,
        wait
      )
  }

  #noteBudget(installationId: number, status: number, headers: Headers): number | undefined {
    const wait = rateLimitWaitMs(status, headers)
    if (wait !== undefined && wait > 0) this.#blockedUntil.set(installationId, Date.now() + wait)
    return wait
  }

  /**
   * An installation access token (cached by auth-app until shortly before it expires; `refresh`:
   * a new one, when GitHub no longer takes the cached one).
   */
  async installationToken(installationId: number, refresh = false): Promise<string> {
    const what = `installation ${installationId}`
    this.#checkBudget(0, what)
    try {
      const auth = await this.#auth({ type: 'installation', installationId, refresh })
      return auth.token
    } catch (err) {
      const { status, headers } = octokitFailure(err)
      if (status === 404)
        throw new Rejection(
          'installation_invalid',
          `GitHub knows no installation ${installationId} of this App`
        )
      if (status === 403 || status === 429)
        throw new TransientError(
          `${what}: GitHub refused an access token (HTTP ${status})`,
          this.#noteBudget(0, status, headers) ?? DEFAULT_RETRY_MS
        )
      throw new TransientError(`${what}: no access token (${status ? `HTTP ${status}` : errorDetail(err)})`)
    }
  }

  /** GET an API path with the installation's token; null on 404 (absent, or not covered by it). */
  async #get<S extends z.ZodType>(
    installationId: number,
    path: string,
    schema: S,
    what: string
  ): Promise<z.infer<S> | null> {
    this.#checkBudget(installationId, what)
    const call = async (token: string) => {
      try {
        return await fetch(`${this.apiUrl}${path}`, {
          headers: githubRequestHeaders(token, 'application/vnd.github+json'),
          redirect: 'error',
          signal: AbortSignal.timeout(this.timeoutMs),
        })
      } catch (err) {
        throw new TransientError(`${what}: ${errorDetail(err)}`)
      }
    }
    let res = await call(await this.installationToken(installationId))
    if (res.status === 401) {
      // The cached token was revoked (or GitHub forgot it): one more try with a new one.
      await res.body?.cancel()
      res = await call(await this.installationToken(installationId, true))
    }
    const wait = this.#noteBudget(installationId, res.status, res.headers)
    if (res.status === 404) {
      await res.body?.cancel()
      return null
    }
    if (!res.ok) {
      await res.body?.cancel()
      if (res.status === 403 || res.status === 429)
        throw new TransientError(`${what}: GitHub rate limit (HTTP ${res.status})`, wait ?? DEFAULT_RETRY_MS)
      throw new TransientError(`${what}: HTTP ${res.status} from GitHub`)
    }
    const declared = Number(res.headers.get('content-length') ?? NaN)
    if (declared > MAX_API_BYTES) {
      await res.body?.cancel()
      throw new TransientError(`${what}: GitHub's answer is ${declared} bytes`)
    }
    const text = await res.text()
    if (text.length > MAX_API_BYTES) throw new TransientError(`${what}: GitHub's answer is too large`)
    let data: unknown
    try {
      data = JSON.parse(text)
    } catch {
      throw new TransientError(`${what}: GitHub answered with something that is not JSON`)
    }
    const parsed = schema.safeParse(data)
    if (!parsed.success)
      throw new TransientError(`${what}: GitHub's answer has an unexpected shape: ${parsed.error.message}`)
    return parsed.data
  }

  /** The repository by its numeric id, as the installation sees it; null when it cannot see it. */
  repository(installationId: number, repositoryId: number): Promise<GitHubRepository | null> {
    return this.#get(
      installationId,
      `/repositories/${repositoryId}`,
      githubRepositorySchema,
      `repository ${repositoryId}`
    )
  }

  /** The release by repository id and release id; null when that repository has no such release. */
  release(installationId: number, repositoryId: number, releaseId: number): Promise<GitHubRelease | null> {
    return this.#get(
      installationId,
      `/repositories/${repositoryId}/releases/${releaseId}`,
      githubReleaseSchema,
      `release ${releaseId} of repository ${repositoryId}`
    )
  }

  /**
   * An `owner/name` resolved to its id through the App's installation on it (operator commands):
   * `GET /repos/{owner}/{repo}/installation` with the App JWT, then the repository with that token.
   */
  async resolveRepository(fullName: string): Promise<GitHubRepository & { installationId: number }> {
    // Typed by an operator: only `owner/name` may become part of the URL.
    if (!githubRepositorySchema.shape.full_name.safeParse(fullName).success)
      throw new Error(`"${fullName}" is not owner/name`)
    const app = await this.#auth({ type: 'app' })
    const res = await fetch(`${this.apiUrl}/repos/${fullName}/installation`, {
      headers: {
        ...githubRequestHeaders(undefined, 'application/vnd.github+json'),
        authorization: `Bearer ${app.token}`,
      },
      signal: AbortSignal.timeout(this.timeoutMs),
    })
    if (res.status === 404)
      throw new Error(`the GitHub App is not installed on ${fullName} (or it does not exist)`)
    if (!res.ok) throw new Error(`GET /repos/${fullName}/installation: HTTP ${res.status}`)
    const { id: installationId } = z.object({ id: z.number().int().positive() }).parse(await res.json())
    const repoRes = await fetch(`${this.apiUrl}/repos/${fullName}`, {
      headers: githubRequestHeaders(
        await this.installationToken(installationId),
        'application/vnd.github+json'
      ),
      signal: AbortSignal.timeout(this.timeoutMs),
    })
    if (!repoRes.ok) throw new Error(`GET /repos/${fullName}: HTTP ${repoRes.status}`)
    return { ...githubRepositorySchema.parse(await repoRes.json()), installationId }
  }
}
