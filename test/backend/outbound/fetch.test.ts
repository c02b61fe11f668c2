/**
 * The outbound fetcher (backend/outbound/fetch.ts) against real local HTTP servers: the redirect
 * limit, credentials kept to their origin, the address guard on host names, statuses with
 * Retry-After, and the size, time and inspection limits. The image and release services' own
 * codes are tested with their services (test/backend/images, test/backend/releases).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseAllowlist, type Allowlist } from '../../../backend/outbound/allowlist.ts'
import {
  MAX_REDIRECTS,
  safeFetch,
  type FetchFailure,
  type Fetched,
  type FetchOptions,
} from '../../../backend/outbound/fetch.ts'
import { BIG_BYTES, startOriginServer, type OriginServer } from '../../support/origin-server.ts'

let origin: OriginServer
/** A second origin that records the headers of every request and answers what its path asks for. */
let recorder: { server: Server; url: string; origin: string; seen: IncomingHttpHeaders[] }

beforeAll(async () => {
  origin = await startOriginServer({
    'a.txt': { body: Buffer.from('hello'), contentType: 'text/plain' },
  })
  const seen: IncomingHttpHeaders[] = []
  const server = createServer((req, res) => {
    seen.push(req.headers)
    if (req.url === '/busy') return void res.writeHead(503, { 'retry-after': '7' }).end()
    if (req.url === '/back') return void res.writeHead(302, { location: '/echo' }).end()
    res.writeHead(200, { 'content-type': 'text/plain' }).end('recorded')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  recorder = { server, url: `http://127.0.0.1:${port}`, origin: `127.0.0.1:${port}`, seen }
})
afterAll(async () => {
  await origin?.close()
  recorder?.server.closeAllConnections()
  await new Promise((resolve) => recorder?.server.close(resolve))
})

const allowlist = (text: string): Allowlist => {
  const parsed = parseAllowlist(text, 'TEST_HOSTS')
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.allowlist
}
const options = (extra: Partial<FetchOptions> = {}): FetchOptions => ({
  allowlist: allowlist(`${origin.origin},${recorder.origin}`),
  what: 'the thing',
  maxBytes: 1024 * 1024,
  totalTimeoutMs: 5_000,
  ...extra,
})
const failureOf = (fetched: Fetched<unknown>): FetchFailure => {
  if (fetched.ok) throw new Error('expected a failure, got the bytes')
  return fetched.failure
}
const redirectTo = (to: string) => `${origin.url}/redirect?to=${encodeURIComponent(to)}`

describe('the outbound fetcher', () => {
  it(`follows ${MAX_REDIRECTS} redirects and refuses one more without following it`, async () => {
    expect(MAX_REDIRECTS).toBe(3)
    const ok = await safeFetch(`${origin.url}/chain/3/files/a.txt`, options())
    expect(ok).toMatchObject({ ok: true, url: origin.fileUrl('a.txt') })
    if (ok.ok) expect(ok.bytes.toString()).toBe('hello')

    const before = origin.hits('/files/a.txt')
    const refused = await safeFetch(`${origin.url}/chain/4/files/a.txt`, options())
    expect(refused).toMatchObject({
      ok: false,
      failure: { code: 'too_many_redirects', message: 'the thing redirected more than 3 times' },
    })
    expect(origin.hits('/files/a.txt')).toBe(before)
  })

  it('sends credentials to the origin they were given for, never along a redirect to another', async () => {
    const headers = { authorization: 'token secret', cookie: 'a=b', 'user-agent': 'test-agent' }
    recorder.seen.length = 0
    await safeFetch(`${recorder.url}/back`, options({ headers }))
    expect(recorder.seen).toHaveLength(2)
    for (const seen of recorder.seen) expect(seen).toMatchObject({ authorization: 'token secret' })

    recorder.seen.length = 0
    const fetched = await safeFetch(redirectTo(`${recorder.url}/echo`), options({ headers }))
    expect(fetched.ok).toBe(true)
    expect(recorder.seen).toHaveLength(1)
    expect(recorder.seen[0]).toMatchObject({ 'user-agent': 'test-agent', 'accept-encoding': 'identity' })
    expect(recorder.seen[0]).not.toHaveProperty('authorization')
    expect(recorder.seen[0]).not.toHaveProperty('cookie')
  })

  it('refuses a listed host name that resolves to loopback, before connecting', async () => {
    // Port 80: a listed host name is reached on its scheme's default port only.
    const fetched = await safeFetch(
      'http://localhost/files/a.txt',
      options({ allowlist: allowlist('localhost') })
    )
    const failure = failureOf(fetched)
    expect(failure.code).toBe('address_blocked')
    expect(failure.message).toMatch(/resolves to an address that is not allowed \(loopback\)/)
  })

  it('refuses a redirect to a loopback address that is not an explicit origin', async () => {
    const fetched = await safeFetch(redirectTo(`http://127.0.0.2:${origin.port}/files/a.txt`), options())
    const failure = failureOf(fetched)
    expect(failure.code).toBe('address_blocked')
    expect(failure.message).toMatch(/^redirect: /)
  })

  it('reports a status with its Retry-After', async () => {
    expect(await safeFetch(`${recorder.url}/busy`, options())).toMatchObject({
      ok: false,
      failure: { code: 'http_status', status: 503, retryAfterMs: 7_000 },
    })
    expect(await safeFetch(`${origin.url}/status/404`, options())).toMatchObject({
      ok: false,
      failure: { code: 'http_status', status: 404, retryAfterMs: undefined },
    })
  })

  it('stops reading past the size limit, reporting progress on the way', async () => {
    let progress = 0
    const fetched = await safeFetch(`${origin.url}/big`, options({ onProgress: () => progress++ }))
    expect(fetched).toMatchObject({ ok: false, failure: { code: 'too_large' } })
    expect(progress).toBeGreaterThan(0)
    await origin.streams.big!.done
    expect(origin.streams.big!.closedEarly).toBe(true)
    expect(origin.streams.big!.bytesWritten).toBeLessThan(BIG_BYTES)
  })

  it('gives up at the total deadline', async () => {
    const fetched = await safeFetch(`${origin.url}/trickle`, options({ totalTimeoutMs: 1_500 }))
    expect(fetched).toMatchObject({
      ok: false,
      failure: { code: 'timeout', message: 'the thing took longer than 1500 ms' },
    })
  })

  it('hands the inspector the first bytes and returns its value, or its refusal', async () => {
    const heads: string[] = []
    const inspector = (accept: boolean) => ({
      bytes: 3,
      judge: (head: Uint8Array) => {
        heads.push(Buffer.from(head).toString())
        return accept ? { ok: true as const, value: 'judged' } : { ok: false as const, message: 'not wanted' }
      },
    })
    expect(await safeFetch(origin.fileUrl('a.txt'), options(), inspector(true))).toMatchObject({
      ok: true,
      inspected: 'judged',
    })
    expect(await safeFetch(origin.fileUrl('a.txt'), options(), inspector(false))).toMatchObject({
      ok: false,
      failure: { code: 'refused_content', message: 'not wanted' },
    })
    expect(heads).toEqual(['hel', 'hel'])
  })
})
