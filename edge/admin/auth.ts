/**
 * Bearer-token guard of the operator API, compared in constant time. Two credentials: ADMIN_TOKEN
 * may do everything; PURGE_TOKEN (held by the release service) only what a route accepts it for,
 * the cache purge, so a leak of the release service's secret cannot drain a datacenter.
 */
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.ts'
import type { EdgeConfig } from '../config.ts'
import { ApiError } from '../http/errors.ts'

export type Credential = 'admin' | 'purge'

const encoder = new TextEncoder()

const digest = (s: string) => crypto.subtle.digest('SHA-256', encoder.encode(s))

async function sameSecret(given: ArrayBuffer, expected: string): Promise<boolean> {
  // Hash both so the comparison is over equal lengths and leaks neither length nor content.
  return crypto.subtle.timingSafeEqual(given, await digest(expected))
}

const tokenOf = (config: EdgeConfig, credential: Credential) =>
  credential === 'admin' ? config.adminToken : config.purgeToken

/** Accepts a request bearing the token of one of `accepted` (the admin token is always accepted). */
export function requireBearer(accepted: readonly Credential[] = []): MiddlewareHandler<AppEnv> {
  const credentials: Credential[] = ['admin', ...accepted.filter((a) => a !== 'admin')]
  return async (c, next) => {
    const config = c.get('config')
    const expected = credentials.map((cr) => tokenOf(config, cr)).filter((t) => t !== undefined)
    if (expected.length === 0)
      throw new ApiError(
        'admin_disabled',
        `the operator API is disabled: ${credentials.map((cr) => `${cr.toUpperCase()}_TOKEN`).join(' or ')} is not set`
      )
    const header = c.req.header('authorization') ?? ''
    const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header)
    let ok = false
    if (match) {
      const given = await digest(match[1]!)
      // Every configured token is compared, so the time taken does not say which one matched.
      for (const token of expected) ok = (await sameSecret(given, token)) || ok
    }
    if (!ok) {
      c.header('www-authenticate', 'Bearer realm="vtta operator"')
      throw new ApiError('unauthorized', 'a valid bearer token is required')
    }
    await next()
  }
}

/** The operator API: the admin token only. */
export const requireAdmin = requireBearer()
