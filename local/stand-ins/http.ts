/**
 * The one small HTTP server under the stand-ins (GitHub, Discord) and the tests' image origin
 * (test/support/origin-server.ts):
 *   Router          routes by method and URL pattern (the standard URLPattern: `/repos/:owner/:repo`,
 *                   `/_objects/:id(\\d+)`), tried in the order registered; a handler that calls
 *                   `next()` passes the request on (middleware), as in Hono or Koa
 *   sendJson        a JSON reply with status and headers
 *   readBody/Json   the request body, at most 1 MiB unless told otherwise (413 past it, 400 for
 *                   a body that is not JSON: thrown as HttpError, answered by serveHttp)
 *   serveHttp       listens on a host and port (0: a free one), turns a failed handler into its
 *                   HttpError's status or a 500,
 *                   and closes with every connection still open
 *
 * Why node:http and not Hono (which the edge uses): these servers exist to misbehave at the byte
 * level (half a zip and then a stall, one byte a second, 40 MB streamed against backpressure, a
 * client cut off mid-download, TCP connections counted), which needs the raw ServerResponse that a
 * Request/Response framework hides. The matching is URLPattern's, so no hand-written regexes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { errorMessage } from '#shared/error-message.ts'

/** One request as a handler sees it. `state` is what earlier middleware left for later handlers. */
export interface Exchange<S> {
  req: IncomingMessage
  res: ServerResponse
  url: URL
  /** The matched pattern's named groups, as they appear in the path (still percent-encoded). */
  params: Record<string, string>
  state: S
}

export type Next = () => Promise<void>
export type Handler<S> = (x: Exchange<S>, next: Next) => void | Promise<void>

interface Route<S> {
  method: string | null
  pattern: URLPattern | null
  handle: Handler<S>
}

export class Router<S> {
  readonly #routes: Route<S>[] = []
  readonly #state: () => S

  /** `state`: a fresh state for each request (e.g. `() => ({})` when the routes need none). */
  constructor(state: () => S) {
    this.#state = state
  }

  /** Middleware for every request (or those under `path`), in order with the routes. */
  use(handle: Handler<S>): this
  use(path: string, handle: Handler<S>): this
  use(a: string | Handler<S>, b?: Handler<S>): this {
    return typeof a === 'string' ? this.#add(null, a, b!) : this.#add(null, null, a)
  }
  get(path: string, handle: Handler<S>): this {
    return this.#add('GET', path, handle)
  }
  post(path: string, handle: Handler<S>): this {
    return this.#add('POST', path, handle)
  }
  delete(path: string, handle: Handler<S>): this {
    return this.#add('DELETE', path, handle)
  }
  /** Any method. */
  all(path: string, handle: Handler<S>): this {
    return this.#add(null, path, handle)
  }

  #add(method: string | null, path: string | null, handle: Handler<S>): this {
    this.#routes.push({ method, pattern: path === null ? null : new URLPattern({ pathname: path }), handle })
    return this
  }

  /** Runs the first route that matches, and on through `next()`; `fallback` when none is left. */
  async handle(req: IncomingMessage, res: ServerResponse, fallback: Handler<S>): Promise<void> {
    const x: Exchange<S> = {
      req,
      res,
      url: new URL(req.url ?? '/', 'http://stand-in'),
      params: {},
      state: this.#state(),
    }
    const from = async (start: number): Promise<void> => {
      for (let i = start; i < this.#routes.length; i++) {
        const route = this.#routes[i]!
        if (route.method !== null && route.method !== req.method) continue
        const match = route.pattern?.exec({ pathname: x.url.pathname })
        if (match === null) continue
        x.params = {}
        for (const [name, value] of Object.entries(match?.pathname.groups ?? {}))
          if (value !== undefined) x.params[name] = value
        return route.handle(x, () => from(i + 1))
      }
      return fallback(x, () => Promise.resolve())
    }
    await from(0)
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {}
): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
  res.end(JSON.stringify(body))
}

/** A request the server refuses with this status; serveHttp answers it as `{"message"}`. */
export class HttpError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

/** The default cap on a request body: every body these servers take is a small JSON document. */
export const BODY_LIMIT_BYTES = 1024 * 1024

/** The request body; past `limit` bytes (declared or sent), an HttpError 413. */
export async function readBody(req: IncomingMessage, limit = BODY_LIMIT_BYTES): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `request body over ${limit} bytes`)
  if (Number(req.headers['content-length'] ?? 0) > limit) throw tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const bytes = chunk as Buffer
    size += bytes.length
    if (size > limit) throw tooLarge()
    chunks.push(bytes)
  }
  return Buffer.concat(chunks)
}

/** The body as JSON; an empty body is `{}`. Anything else that is not JSON: an HttpError 400. */
export async function readJson(req: IncomingMessage, limit = BODY_LIMIT_BYTES): Promise<unknown> {
  const text = (await readBody(req, limit)).toString('utf8') || '{}'
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw new HttpError(400, `request body is not JSON: ${errorMessage(error)}`)
  }
}

export interface HttpServer {
  /** `http://<host>:<port>` */
  url: string
  host: string
  port: number
  server: Server
  close(): Promise<void>
}

export interface ServeOptions {
  host?: string
  /** 0 or absent: a free port. */
  port?: number
  /**
   * The answer when a handler throws before it has sent anything; `status` is the HttpError's, or
   * 500. Default: that status with `{"message"}`.
   */
  onError?: (res: ServerResponse, error: unknown, status: number) => void
}

export async function serveHttp(
  handle: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
  opts: ServeOptions = {}
): Promise<HttpServer> {
  const onError =
    opts.onError ?? ((res, error, status) => sendJson(res, status, { message: errorMessage(error) }))
  const server = createServer((req, res) => {
    Promise.resolve()
      .then(() => handle(req, res))
      .catch((error: unknown) => {
        if (res.headersSent) return void res.destroy()
        onError(res, error, error instanceof HttpError ? error.status : 500)
      })
  })
  // A client killed mid-download must not take the server down.
  server.on('clientError', (_err, socket) => socket.destroy())
  const host = opts.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
