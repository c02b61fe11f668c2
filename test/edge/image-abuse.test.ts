/**
 * The image proxy cannot be turned into a weapon (issue #11, H1), end to end inside workerd against a
 * real nats-server and the real image service of `syd` (global-setup.ts): amplification options are
 * refused at the edge, decimal blur shares one cache key, image-service timeouts leave the datacenter
 * in rotation, the service drops work past the edge's deadline, and misses are rate-limited per IP.
 */
import { describe, expect, it } from 'vitest'
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import { errorOf } from './responses.ts'

const nearSydney = { 'x-client-geo': '-33.87,151.21' }
const icon = `${env.IMAGE_ORIGIN}/files/icon.png`

/** A request through the Worker with a few vars changed (a new config, same bindings). */
async function call(path: string, headers: Record<string, string>, vars: Record<string, string> = {}) {
  const ctx = createExecutionContext()
  const res = await worker.fetch(
    new Request(`https://edge.test${path}`, { headers }),
    { ...env, ...vars },
    ctx
  )
  await waitOnExecutionContext(ctx)
  return res
}

async function serviceMetric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${env.IMAGE_SERVICE}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels))
  return line ? Number(line.split(' ').at(-1)) : 0
}

describe('amplification requests', () => {
  it('answers the review request, several at once, 400 naming the option, without asking a datacenter', async () => {
    const before = await serviceMetric('images_transforms_total')
    const answers = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        call(`/img/width=8192,height=8192,fit=pad,format=webp,blur=100.1/${icon}?n=${i}`, {
          ...nearSydney,
          'cf-connecting-ip': '198.51.100.1',
        })
      )
    )
    for (const res of answers) {
      expect(res.status).toBe(400)
      const error = await errorOf(res)
      expect(error.code).toBe('invalid_option')
      expect(error.message).toMatch(/^width: width x height \(after dpr\) may be at most 16000000 pixels/)
    }
    expect(await serviceMetric('images_transforms_total')).toBe(before)
    // Still in rotation: the next request from near Sydney is answered by syd.
    const ok = await call(`/img/width=32,format=webp/${icon}?after-amplification`, nearSydney)
    expect(ok.status).toBe(200)
    expect(ok.headers.get('x-datacenter')).toBe('syd')
    expect(await serviceMetric('process_resident_memory_bytes')).toBeLessThan(1024 * 1024 * 1024)
  })

  it('gives blur=100.1 and blur=100 one cache entry (one transform)', async () => {
    const first = await call(`/img/width=48,blur=100.1,format=webp/${icon}`, nearSydney)
    expect(first.status).toBe(200)
    expect(first.headers.get('x-cache')).toBe('MISS')
    const second = await call(`/img/width=48,blur=100,format=webp/${icon}`, nearSydney)
    expect(second.status).toBe(200)
    expect(second.headers.get('x-cache')).toBe('HIT')
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'))
  })
})

describe('image-service time-outs and the deadline', () => {
  it('leave the datacenter in rotation, and the service drops the work nobody waits for', async () => {
    const droppedBefore = await serviceMetric('images_deadline_exceeded_total', 'stage="fetch"')
    // Three time-outs in a row: more than DOWN_AFTER (2), which used to take syd out of rotation.
    for (let i = 0; i < 3; i++) {
      const res = await call(
        `/img/width=40/${env.IMAGE_ORIGIN}/slow/3000/files/icon.png?t=${i}`,
        nearSydney,
        {
          IMAGE_TIMEOUT_MS: '400',
        }
      )
      const error = await errorOf(res)
      // syd was tried first every time: its time-out did not count against it.
      expect({ status: res.status, code: error.code }).toEqual({ status: 504, code: 'datacenter_timeout' })
      // The edge's time-out, or the service's deadline_exceeded if it answered just before.
      expect(error.message).toMatch(
        /^no datacenter could transform the image \(syd: (timeout|deadline_exceeded)/
      )
    }
    const ok = await call(`/img/width=24,format=webp/${icon}?after-timeouts`, nearSydney)
    expect(ok.status).toBe(200)
    expect(ok.headers.get('x-datacenter')).toBe('syd')
    expect(ok.headers.get('x-failover-from')).toBeNull()
    // The edge sent x-deadline; the service stopped waiting for the slow source at it.
    await expect
      .poll(() => serviceMetric('images_deadline_exceeded_total', 'stage="fetch"'), { timeout: 5_000 })
      .toBeGreaterThanOrEqual(droppedBefore + 3)
  })
})

describe('per-client rate limit on image misses', () => {
  it('answers 429 with Retry-After past the limit (20 a minute in tests), and still serves hits', async () => {
    // The limiter's windows are aligned to the minute: start early in one.
    const intoMinute = Date.now() % 60_000
    if (intoMinute > 50_000) await scheduler.wait(60_500 - intoMinute)
    const ip = { 'cf-connecting-ip': '203.0.113.9' }
    const cached = `/img/width=16,format=webp/${icon}?rate-limit-hit`
    expect((await call(cached, { ...nearSydney, 'cf-connecting-ip': '203.0.113.10' })).status).toBe(200)

    const statuses: number[] = []
    for (let i = 0; i < 20; i++) {
      // Not an allowed source: each miss is a fast refusal (502 where no image service runs, 403 from
      // syd once the others are held out of rotation), but a miss all the same.
      const res = await call(`/img/width=100/https://www.dndbeyond.com/a.png?miss=${i}`, {
        ...ip,
        'x-client-geo': '50.1,8.7',
      })
      statuses.push(res.status)
    }
    expect(statuses.filter((s) => s === 429)).toEqual([])
    const limited = await call('/img/width=100/https://www.dndbeyond.com/a.png?miss=20', {
      ...ip,
      'x-client-geo': '50.1,8.7',
    })
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBe('60')
    const error = await errorOf(limited)
    expect(error.code).toBe('rate_limited')
    // A hit costs no datacenter anything: not limited.
    const hit = await call(cached, { ...nearSydney, ...ip })
    expect(hit.status).toBe(200)
    expect(hit.headers.get('x-cache')).toBe('HIT')
    // Another client is not affected.
    const other = await call('/img/width=100/https://www.dndbeyond.com/a.png?miss=other', {
      'cf-connecting-ip': '203.0.113.77',
      'x-client-geo': '50.1,8.7',
    })
    expect(other.status).not.toBe(429)
  }, 20_000)
})
