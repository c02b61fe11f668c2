/**
 * How the edge answers what it caches (images/, modules/), one way for both: the answer says where
 * it came from in `x-cache` (HIT: this location's cache; MISS: a datacenter), carries the request
 * id, and drops the Cache API's own `cf-cache-status`. A 200 whose ETag matches the client's
 * If-None-Match (shared/http/etag.ts) becomes 304 Not Modified, without its body and without
 * Content-Type and Content-Length (RFC 9110 15.4.5: a 304 carries no representation metadata);
 * any other status is answered as it is, since a precondition applies only to what would be a 2xx
 * (RFC 9110 13.2.1): a cached error is never "not modified".
 */
import type { Context } from 'hono'
import { matchesEtag } from '#shared/http/etag.ts'
import type { AppEnv } from '../env.ts'

export type CacheStatus = 'HIT' | 'MISS'

export async function cachedAnswer(
  c: Context<AppEnv>,
  answer: { status: number; headers: HeadersInit; body: BodyInit | null },
  xCache: CacheStatus
): Promise<Response> {
  // Headers a route set on the way (steering/failover.ts: x-steering, x-failover-from) are held by the
  // context until an answer takes them: a bare Response of its own would drop them.
  const headers = new Headers(c.res.headers)
  for (const [name, value] of new Headers(answer.headers)) headers.set(name, value)
  headers.delete('cf-cache-status')
  headers.set('x-cache', xCache)
  headers.set('x-request-id', c.get('requestId'))
  if (answer.status === 200 && matchesEtag(c.req.header('if-none-match'), headers.get('etag'))) {
    // The body is not sent: a stream still open is released (a tee's other branch goes on).
    if (answer.body instanceof ReadableStream) await answer.body.cancel()
    headers.delete('content-type')
    headers.delete('content-length')
    return new Response(null, { status: 304, headers })
  }
  return new Response(answer.body, { status: answer.status, headers })
}
