/**
 * What Miniflare's simulations of the edge's bindings cost inside workerd, for bench/image-edge.ts.
 * It runs in the edge's own Miniflare (the same workerd, persistence and rate limiter settings), and
 * does per request what an image miss does to each binding, `n` times, in `parallel` chains (the
 * concurrency of the misses it stands for):
 *   GET /?binding=ratelimit&n=<n>&parallel=<p>          IMAGE_RATE_LIMITER.limit() for one client
 *   GET /?binding=cache&n=<n>&parallel=<p>&bytes=<b>    a Cache API miss, then a put of <b> bytes
 *                                                       under that key
 *   GET /?binding=none                                  nothing: the request alone
 * workerd's clock only moves on I/O, so the cost is measured from outside: workerd's CPU time for a
 * request making n calls, minus one making none, over n.
 */

interface Env {
  IMAGE_RATE_LIMITER: RateLimit
}

let run = 0

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url)
    const n = Number(url.searchParams.get('n') ?? 0)
    const parallel = Math.max(1, Number(url.searchParams.get('parallel') ?? 1))
    const binding = url.searchParams.get('binding')
    const body = new Uint8Array(Number(url.searchParams.get('bytes') ?? 0))
    const batch = run++
    const calls: Record<string, ((i: number) => Promise<void>) | undefined> = {
      none: undefined,
      ratelimit: async () => {
        await env.IMAGE_RATE_LIMITER.limit({ key: 'img:probe' })
      },
      cache: async (i) => {
        // A new key each time, as each miss is a new image.
        const key = new Request(`https://probe.invalid/${batch}/${i}`)
        if (await caches.default.match(key)) throw new Error('a new key was in the cache')
        await caches.default.put(
          key,
          new Response(body, {
            headers: { 'content-type': 'image/webp', 'cache-control': 'public, max-age=31536000' },
          })
        )
      },
    }
    if (!binding || !(binding in calls))
      return new Response('binding: ratelimit, cache or none', { status: 400 })
    const call = calls[binding]
    if (call) {
      let next = 0
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          while (next < n) await call(next++)
        })
      )
    }
    return new Response(`${binding} x ${n}`)
  },
}
