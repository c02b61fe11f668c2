/**
 * GET/HEAD requests proxied to a datacenter's web service (at the request's leg when the emulated
 * WAN is on: steering/legs.ts), with failover: a refused or reset connection (`unreachable`), no
 * answer within UPSTREAM_TIMEOUT_MS (`timeout`) or a 5xx (`upstream_5xx`) moves the request to the
 * next datacenter; when none answers, the answer is steering/failover.ts's (504 if any timed out,
 * else 502). The datacenter's own `x-datacenter`
 * header passes through. Every request carries the edge's proof (the Access service token); a
 * client's own CF-Access-* headers are dropped, never forwarded. A HEAD goes upstream as a HEAD
 * unless the caller asks for the GET (`method: 'GET'`): routes that cache must only ever store what
 * a GET produced.
 */
import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { AppEnv } from '../env.ts'
import { failoverError, withFailover } from '../steering/failover.ts'
import { webLeg } from '../steering/legs.ts'

/** Request headers that describe this hop, not the request, and are not forwarded. */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'host',
  'x-client-geo',
  'cf-connecting-ip',
  'cf-access-client-id',
  'cf-access-client-secret',
  'cf-access-jwt-assertion',
]

export async function proxyToDatacenter(
  c: Context<AppEnv>,
  path: string,
  opts: { conditional?: boolean; method?: 'GET' } = {}
): Promise<Response> {
  const method = opts.method ?? (c.req.method === 'HEAD' ? 'HEAD' : 'GET')
  const headers = new Headers(c.req.raw.headers)
  for (const name of HOP_BY_HOP) headers.delete(name)
  if (opts.conditional === false)
    for (const name of ['if-none-match', 'if-modified-since']) headers.delete(name)
  headers.set('x-request-id', c.get('requestId'))
  for (const [name, value] of Object.entries(c.get('config').originProof)) headers.set(name, value)
  const timeoutMs = c.get('config').upstreamTimeoutMs

  const outcome = await withFailover(c, async (dc) => {
    let res: Response
    try {
      res = await fetch(new URL(path, webLeg(c, dc)), {
        method,
        headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (error) {
      return error instanceof Error && error.name === 'TimeoutError'
        ? { ok: false, code: 'timeout', message: `no answer within ${timeoutMs} ms` }
        : { ok: false, code: 'unreachable', message: String(error) }
    }
    if (res.status >= 500) {
      await res.body?.cancel()
      return { ok: false, code: 'upstream_5xx', message: `HTTP ${res.status}` }
    }
    return { ok: true, value: res }
  })
  if (!outcome.ok) throw failoverError(c, outcome.failures, 'answer')
  const upstream = outcome.value
  // Through the context, so the headers this request already set (request id, failover) are kept.
  upstream.headers.forEach((value, name) => c.header(name, value, { append: true }))
  return upstream.body === null
    ? c.body(null, upstream.status as ContentfulStatusCode)
    : c.body(upstream.body, upstream.status as ContentfulStatusCode)
}
