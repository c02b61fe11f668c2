/**
 * One structured log line per request: request id, route, status, time, and which datacenter
 * served it (and whether the edge cache or a failover was involved). Lines are bounded: the path
 * is cut, nothing from the body is logged.
 */
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from './env.ts'

const MAX_PATH = 200

export const requestLog: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = Date.now()
  await next()
  const res = c.res
  const line = {
    level: res.status >= 500 ? 'error' : 'info',
    requestId: c.get('requestId'),
    method: c.req.method,
    path: new URL(c.req.url).pathname.slice(0, MAX_PATH),
    status: res.status,
    ms: Date.now() - started,
    dc: res.headers.get('x-datacenter'),
    cache: res.headers.get('x-cache'),
    failoverFrom: res.headers.get('x-failover-from'),
  }
  console.log(JSON.stringify(line))
}
