/**
 * The runtime's one HTTP error handler (backend/runtime/http.ts) on real Express apps in this
 * process: what a route throws or rejects with, what Express and body-parser throw on hostile
 * input, and unknown paths, on the public app and the internal one. Every error is
 * `{ error: { code, message } }` with the status of its code in http-errors.ts, never cached, and an
 * unexpected error's detail reaches the log only.
 */
import type { Server } from 'node:http'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import express from 'express'
import { pino } from 'pino'
import { z } from 'zod'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createHttpApp, createInternalApp } from '../../backend/runtime/http.ts'
import { HttpError, httpErrors } from '../../backend/runtime/http-errors.ts'
import { InFlight } from '../../backend/runtime/in-flight.ts'
import { createMetrics } from '../../backend/runtime/metrics.ts'

const SECRET = 'secret detail: /etc/shadow'
const logLine = z.record(z.string(), z.unknown())
let logLines: Array<z.infer<typeof logLine>> = []
const log = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        logLines.push(logLine.parse(JSON.parse(line)))
      done()
    },
  })
)

let server: Server
let internalServer: Server
let base: string
let internalBase: string

const listen = (app: express.Express): Promise<Server> =>
  new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
const urlOf = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`

beforeAll(async () => {
  const metrics = createMetrics({ service: 'web', dc: 'fra' })
  const { app, routes } = createHttpApp(metrics, { stopping: () => false, inFlight: new InFlight(), log })
  routes.post('/echo', express.json({ limit: '1kb' }), (req, res) => {
    res.json({ echoed: req.body as unknown })
  })
  routes.get('/modules/:id', (req) => {
    throw new HttpError('module_not_found', `no module "${req.params.id}"`)
  })
  routes.get('/versions/:version', async () => {
    await Promise.resolve()
    throw new HttpError('invalid_version')
  })
  routes.get('/unavailable', async () => {
    await Promise.resolve()
    throw new HttpError('registry_unavailable', undefined, { cause: new Error(`nats timeout ${SECRET}`) })
  })
  routes.get('/bug', async () => {
    await Promise.resolve()
    throw new Error(SECRET)
  })
  routes.get('/thrown-string', () => {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- a dependency might throw anything
    throw SECRET
  })
  routes.get('/meant-to-cache', (_req, res) => {
    res.setHeader('etag', '"abc"')
    res.setHeader('cache-control', 'public, max-age=31536000, immutable')
    throw new HttpError('version_not_found')
  })
  routes.get('/half', (_req, res) => {
    res.setHeader('content-length', '100')
    res.write('the first bytes')
    throw new Error(SECRET)
  })
  routes.get('/params/:id', (_req, res) => {
    res.json({ ok: true })
  })
  server = await listen(app)
  base = urlOf(server)

  const internal = createInternalApp(
    metrics,
    async () => {
      await Promise.resolve()
      throw new Error(SECRET)
    },
    log
  )
  internalServer = await listen(internal)
  internalBase = urlOf(internalServer)
})
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve))
  await new Promise((resolve) => internalServer?.close(resolve))
})
beforeEach(() => {
  logLines = []
})

/** A request sent exactly as written (fetch would normalise the path and refuse some bodies). */
function raw(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: url.slice(u.origin.length), method: init.method ?? 'GET' },
      (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
        res.on('error', reject)
      }
    )
    for (const [name, value] of Object.entries(init.headers ?? {})) req.setHeader(name, value)
    req.on('error', reject)
    req.end(init.body)
  })
}

// Matchers typed as what they stand for, not `any`.
const anyString: unknown = expect.any(String)
const containing = (text: string): unknown => expect.stringContaining(text)
const errorSchema = (code: string) => ({ error: { code, message: anyString } })

/** The response is the table's error for `code`: status, JSON body, never cached, no ETag. */
function expectError(res: Awaited<ReturnType<typeof raw>>, code: keyof typeof httpErrors) {
  expect(res.status).toBe(httpErrors[code].status)
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  expect(res.headers['cache-control']).toBe('no-store')
  // Express tags every body it sends; what must never survive is the ETag the route meant to send.
  expect(res.headers.etag).not.toBe('"abc"')
  expect(JSON.parse(res.body)).toEqual(errorSchema(code))
  expect(res.body).not.toContain('secret')
  expect(res.body).not.toMatch(/\bat .*\.ts:\d+/)
}

describe('what a route throws', () => {
  it.each([
    ['a thrown HttpError keeps its code and message', '/modules/nope', 'module_not_found'],
    ['a rejected HttpError keeps its code', '/versions/x', 'invalid_version'],
    [
      'an HttpError replaces the headers of what the route meant to send',
      '/meant-to-cache',
      'version_not_found',
    ],
    ['a path no route takes', '/nope', 'not_found'],
    ['a path Express cannot decode', '/params/%E0%A4%A', 'bad_request'],
  ] as const)('%s: %s → %s', async (_case, path, code) => {
    expectError(await raw(`${base}${path}`), code)
  })

  it('sends the message an HttpError was thrown with', async () => {
    expect(JSON.parse((await raw(`${base}/modules/nope`)).body)).toEqual({
      error: { code: 'module_not_found', message: 'no module "nope"' },
    })
  })

  it('answers an expected outage 503 with retry-after, its cause in the log only', async () => {
    const res = await raw(`${base}/unavailable`)
    expectError(res, 'registry_unavailable')
    expect(res.headers['retry-after']).toBe('5')
    expect(logLines).toContainEqual(
      expect.objectContaining({
        level: 50,
        code: 'registry_unavailable',
        err: { type: 'Error', message: containing(SECRET), stack: containing(SECRET) },
      })
    )
  })

  it.each(['/bug', '/thrown-string'])(
    'answers an unexpected failure (%s) 500 internal; the detail goes to the log only',
    async (path) => {
      const res = await raw(`${base}${path}`)
      expectError(res, 'internal')
      expect(JSON.parse(res.body)).toEqual({ error: { code: 'internal', message: 'internal error' } })
      expect(JSON.stringify(logLines)).toContain(SECRET)
      expect(logLines).toContainEqual(expect.objectContaining({ level: 50, code: 'internal', path }))
    }
  )

  it('cuts the connection when a route fails after its response started', async () => {
    await expect(raw(`${base}/half`)).rejects.toThrow(/aborted|socket hang up|ECONNRESET/)
    expect(logLines).toContainEqual(
      expect.objectContaining({ msg: 'request failed after its response started' })
    )
    expectError(await raw(`${base}/nope`), 'not_found')
  })
})

describe('hostile bodies (body-parser, limit 1kb)', () => {
  const post = (body: Buffer | string, headers: Record<string, string> = {}) =>
    raw(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    })

  it('echoes a well-formed body (the route works)', async () => {
    const res = await post('{"a":1}')
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ echoed: { a: 1 } })
  })

  it.each([
    ['malformed JSON', () => post('{"a":'), 'payload_invalid'],
    ['JSON that is not an object or array', () => post('"just a string"'), 'payload_invalid'],
    ['a body over the limit', () => post(JSON.stringify({ a: 'x'.repeat(2_000) })), 'payload_too_large'],
    [
      'a gzip bomb (small on the wire, over the limit inflated)',
      () => post(gzipSync(JSON.stringify({ a: '0'.repeat(1_000_000) })), { 'content-encoding': 'gzip' }),
      'payload_too_large',
    ],
    [
      'a content encoding nobody speaks',
      () => post('{"a":1}', { 'content-encoding': 'x-unheard-of' }),
      'unsupported_media_type',
    ],
    [
      'a charset JSON does not allow',
      () => post('{"a":1}', { 'content-type': 'application/json; charset=latin1' }),
      'unsupported_media_type',
    ],
  ] as const)('%s → its own code', async (_case, send, code) => {
    expectError(await send(), code)
    // A client's mistake is not the service's: nothing logged as an error.
    expect(logLines.filter((l) => l.level === 50)).toEqual([])
  })

  it('says what was wrong with malformed JSON', async () => {
    const res = await post('{"a":')
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'payload_invalid', message: containing('JSON') } })
  })
})

describe('the internal app', () => {
  it.each([
    ['GET', '/nope'],
    ['POST', '/metrics'],
    ['GET', '/healthz/../../etc/passwd'],
  ])('answers %s %s 404 not_found in JSON', async (method, path) => {
    expectError(await raw(`${internalBase}${path}`, { method }), 'not_found')
  })

  it('answers a failing readiness check 500 internal, the detail in the log only', async () => {
    const res = await raw(`${internalBase}/readyz`)
    expectError(res, 'internal')
    expect(JSON.stringify(logLines)).toContain(SECRET)
  })

  it('still serves health and metrics', async () => {
    expect((await raw(`${internalBase}/healthz`)).status).toBe(200)
    expect((await raw(`${internalBase}/metrics`)).body).toMatch(/http_requests_total\{route="unmatched"/)
  })
})
