/**
 * The HTTP side every service shares, on two listeners:
 *  - the public app (HTTP_PORT): the service's own routes, request metrics, in-flight tracking;
 *  - the internal app (INTERNAL_HTTP_PORT, never published): liveness `/healthz`, readiness
 *    `/readyz` and Prometheus `/metrics`, for health checks and scrapes only.
 * Both end in the same two handlers: a path no route takes is `not_found`, and every error a route
 * throws or rejects with (Express 5 passes rejections on) is rendered by `errorHandler` from the
 * table in http-errors.ts. No route writes an error response of its own.
 */
import express, {
  Router,
  type ErrorRequestHandler,
  type Express,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express'
import type { Logger } from './logger.ts'
import type { RuntimeMetrics } from './metrics.ts'
import type { InFlight } from './in-flight.ts'
import { asHttpError, HttpError } from './http-errors.ts'

export interface Readiness {
  /** Why the service is not ready, or null when it is. */
  (): Promise<string | null>
}

export interface HttpAppOptions {
  stopping: () => boolean
  /** Every request counts as work in flight until its response is sent, so shutdown waits for it. */
  inFlight: InFlight
  log: Logger
}

export interface HttpApp {
  /** What listens. */
  app: Express
  /** Where the service adds its routes; they sit before the not-found and error handlers. */
  routes: Router
}

/** The public app. Its routes may be added after it listens: until then every path is not_found. */
export function createHttpApp(metrics: RuntimeMetrics, { stopping, inFlight, log }: HttpAppOptions): HttpApp {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', 'strong')

  // While stopping, tell keep-alive clients to reconnect (elsewhere) instead of reusing this connection.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    if (stopping()) res.setHeader('connection', 'close')
    void inFlight.track(() => new Promise((resolve) => res.once('close', resolve)))
    next()
  })

  app.use((req: Request, res: Response, next: NextFunction) => {
    const stop = metrics.httpDuration.startTimer()
    res.on('finish', () => {
      // Unmatched paths share one label so hostile URLs cannot blow up the metric's cardinality.
      const route = routeLabel(req)
      stop({ route, method: req.method })
      metrics.httpRequests.inc({ route, method: req.method, status: String(res.statusCode) })
    })
    next()
  })
  const routes = Router()
  app.use(routes)
  app.use(notFound)
  app.use(errorHandler(log))
  return { app, routes }
}

/** The internal app: health and metrics, nothing else. */
export function createInternalApp(metrics: RuntimeMetrics, readiness: Readiness, log: Logger): Express {
  const app = express()
  app.disable('x-powered-by')
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'alive' })
  })
  app.get('/readyz', async (_req, res) => {
    const reason = await readiness()
    res.status(reason ? 503 : 200).json(reason ? { status: 'not_ready', reason } : { status: 'ready' })
  })
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
  app.use(notFound)
  app.use(errorHandler(log))
  return app
}

/** The matched route's pattern (never the raw path), or `unmatched`. */
function routeLabel(req: Request): string {
  const route: unknown = req.route
  if (typeof route === 'object' && route !== null && 'path' in route) return String(route.path)
  return 'unmatched'
}

const notFound: RequestHandler = (req, _res, next) => {
  next(new HttpError('not_found', `no route for ${req.method} ${req.path}`))
}

/**
 * The one place an HTTP error becomes a response: `{ error: { code, message } }` with the table's
 * status, never cached, never with the ETag of what the route meant to send. A 5xx is logged with
 * its cause; its message is the table's unless a route chose one (an unexpected error's detail and
 * stack never reach the client).
 */
export function errorHandler(log: Logger): ErrorRequestHandler {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- Express tells an error handler by its four parameters
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const error = asHttpError(err)
    if (res.headersSent) {
      // Too late for an error response: cut the connection, so the client sees a broken response
      // rather than a short one passing as whole.
      log.error({ err, path: req.path }, 'request failed after its response started')
      res.destroy()
      return
    }
    if (error.status >= 500)
      log.error({ err: error.cause ?? error, code: error.code, path: req.path }, 'request failed')
    const { status, retryAfterSeconds } = error.spec
    res.removeHeader('etag')
    res.setHeader('cache-control', 'no-store')
    if (retryAfterSeconds !== undefined) res.setHeader('retry-after', String(retryAfterSeconds))
    res.status(status).json({ error: { code: error.code, message: error.message } })
  }
}
