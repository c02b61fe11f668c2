/** Bearer-token guard of the operator API (ADMIN_TOKEN), compared in constant time. */
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from './env.ts'
import { ApiError } from './errors.ts'

const encoder = new TextEncoder()

async function sameSecret(given: string, expected: string): Promise<boolean> {
  // Hash both so the comparison is over equal lengths and leaks neither length nor content.
  const [a, b] = await Promise.all(
    [given, expected].map((s) => crypto.subtle.digest('SHA-256', encoder.encode(s)))
  )
  return crypto.subtle.timingSafeEqual(a!, b!)
}

export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  const expected = c.get('config').adminToken
  if (!expected)
    throw new ApiError(503, 'admin_disabled', 'the operator API is disabled: ADMIN_TOKEN is not set')
  const header = c.req.header('authorization') ?? ''
  const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header)
  if (!match || !(await sameSecret(match[1]!, expected))) {
    c.header('www-authenticate', 'Bearer realm="vtta operator"')
    throw new ApiError(401, 'unauthorized', 'a valid bearer token is required')
  }
  await next()
}
