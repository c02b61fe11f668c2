/**
 * The stand-ins' HTTP server (local/stand-ins/http.ts): routes by method and pattern in order,
 * middleware passes on with next(), bodies are capped, a failed handler is a 500 (or its
 * HttpError's status), and close() does not wait for open connections.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  HttpError,
  readJson,
  Router,
  sendJson,
  serveHttp,
  type HttpServer,
} from '../../local/stand-ins/http.ts'

let server: HttpServer
const seen: string[] = []

beforeAll(async () => {
  const router = new Router<{ who: string }>(() => ({ who: 'nobody' }))
  router.use(async (x, next) => {
    seen.push(`${x.req.method} ${x.url.pathname}`)
    x.state.who = x.req.headers['x-who']?.toString() ?? 'anonymous'
    await next()
  })
  router.get('/items/:id(\\d+)', ({ res, params, state }) =>
    sendJson(res, 200, { id: params.id, by: state.who })
  )
  router.post('/items', async ({ req, res }) => sendJson(res, 201, { got: await readJson(req, 64) }))
  router.use('/private/*', ({ res, state }, next) =>
    state.who === 'admin' ? next() : sendJson(res, 403, { message: 'no' })
  )
  router.get('/private/thing', ({ res }) => sendJson(res, 200, { secret: true }))
  router.get('/teapot', () => {
    throw new HttpError(418, 'short and stout')
  })
  router.get('/broken', () => {
    throw new Error('boom')
  })
  server = await serveHttp((req, res) =>
    router.handle(req, res, ({ res }) => sendJson(res, 404, { message: 'none' }))
  )
})
afterAll(() => server?.close())

const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers })
const post = (path: string, body: string) => fetch(`${server.url}${path}`, { method: 'POST', body })

describe('stand-ins HTTP server', () => {
  it('routes by method and pattern, with the middleware state and the params', async () => {
    const res = await get('/items/42', { 'x-who': 'ana' })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(await res.json()).toEqual({ id: '42', by: 'ana' })
    expect((await get('/items/x')).status).toBe(404)
    expect((await post('/items/42', '')).status).toBe(404)
    expect(seen).toContain('POST /items/42')
  })

  it('middleware under a path answers or passes on', async () => {
    expect((await get('/private/thing')).status).toBe(403)
    expect(await (await get('/private/thing', { 'x-who': 'admin' })).json()).toEqual({ secret: true })
  })

  it('reads JSON bodies, refusing one over the limit with 413 and one that is not JSON with 400', async () => {
    const ok = await post('/items', '{"a":1}')
    expect([ok.status, await ok.json()]).toEqual([201, { got: { a: 1 } }])
    const big = await post('/items', JSON.stringify({ a: 'x'.repeat(100) }))
    expect(big.status).toBe(413)
    expect(await big.json()).toEqual({ message: 'request body over 64 bytes' })
    const bad = await post('/items', '{nope')
    expect(bad.status).toBe(400)
    expect(JSON.stringify(await bad.json())).toMatch(/^\{"message":"request body is not JSON: /)
  })

  it('answers a thrown HttpError with its status, anything else with 500, and stays up', async () => {
    const teapot = await get('/teapot')
    expect([teapot.status, await teapot.json()]).toEqual([418, { message: 'short and stout' }])
    const broken = await get('/broken')
    expect([broken.status, await broken.json()]).toEqual([500, { message: 'boom' }])
    expect((await get('/items/1')).status).toBe(200)
  })

  it('close() ends connections still open instead of waiting for them', async () => {
    const other = await serveHttp((_req, res) => void res.writeHead(200).write('never ends'))
    const body = (await fetch(other.url)).body!.getReader()
    expect((await body.read()).done).toBe(false)
    await other.close()
    await expect(body.read()).rejects.toThrow()
  })
})
