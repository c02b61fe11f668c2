/**
 * The HTTP side every service shares, on two listeners:
 *  - the public app (HTTP_PORT): the service's own routes, request metrics, in-flight tracking and
 *    the JSON error format for anything a service does not answer;
 *  - the internal app (INTERNAL_HTTP_PORT, never published): liveness `/healthz`, readiness
 *    `/readyz` and Prometheus `/metrics`, for health checks and scrapes only.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express'
import type { Logger } from './logger.ts'
import type { RuntimeMetrics } from './metrics.ts'
import type { InFlight } from './in-flight.ts'

export interface Readiness {
  /** Why the service is not ready, or null when it is. */
  (): Promise<string | null>
}

export interface HttpAppOptions {
  stopping: () => boolean
  /** Every request counts as work in flight until its response is sent, so shutdown waits for it. */
  inFlight: InFlight
}

/** The public app: the service adds its routes to it, then finishHttpApp. */
export function createHttpApp(metrics: RuntimeMetrics, { stopping, inFlight }: HttpAppOptions): Express {
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
      const route = req.route?.path ? String(req.route.path) : 'unmatched'
      stop({ route, method: req.method })
      metrics.httpRequests.inc({ route, method: req.method, status: String(res.statusCode) })
    })
    next()
  })
  return app
}

/** The internal app: health and metrics, nothing else. */
export function createInternalApp(metrics: RuntimeMetrics, readiness: Readiness): Express {
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
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'not_found', message: `no route for ${req.method} ${req.path}` } })
  })
  return app
}

/** Appended after the service's own routes: JSON 404 and a JSON 500 that is also logged. */
export function finishHttpApp(app: Express, log: Logger): void {
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'not_found', message: `no route for ${req.method} ${req.path}` } })
  })
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: number }).status
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: { code: 'bad_request', message: (err as Error).message } })
      return
    }
    log.error({ err, path: req.path }, 'request failed')
    res.status(500).json({ error: { code: 'internal', message: 'internal error' } })
  })
}
