/**
 * One structured log line per request that reached a datacenter or failed: request id, route,
 * status, time, which datacenter served it and whether a failover was involved. Successful edge
 * cache hits (the hot path, with no datacenter choice) are counted in /status.json instead: a log
 * line costs more than the hit itself. Lines are bounded: the path is cut, no body is logged.
 */
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from './env.ts'
import { count } from './http/counters.ts'

const MAX_PATH = 200

export const requestLog: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = Date.now()
  await next()
  const res = c.res
  if (res.headers.get('x-cache') === 'HIT' && res.status < 400) {
    count('cacheHits')
    return
  }
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
