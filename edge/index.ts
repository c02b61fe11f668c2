/**
 * The edge: the route table of the platform. Each route family lives in routes/; this file only
 * wires middleware and routes together.
 */
import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import type { AppEnv } from './env.ts'
import { edgeConfig } from './config.ts'
import { notFound, onError } from './errors.ts'
import { home } from './routes/home.ts'
import { health } from './routes/health.ts'
import { notImplemented } from './routes/not-implemented.ts'

export { NatsBridge } from './nats/bridge.ts'

const app = new Hono<AppEnv>()

app.use(requestId())
app.use(async (c, next) => {
  c.set('config', edgeConfig(c.env))
  await next()
})

app.route('/', home)
app.route('/', health)
app.get('/img/*', notImplemented('the image proxy'))
app.post('/webhooks/github', notImplemented('the GitHub webhook'))
app.get('/modules/*', notImplemented('the module registry'))
app.get('/api/modules', notImplemented('the module registry API'))
app.get('/api/modules/*', notImplemented('the module registry API'))
app.get('/status', notImplemented('the status page'))
app.get('/status.json', notImplemented('the status document'))
app.post('/admin/datacenters/:dc/drain', notImplemented('draining'))
app.post('/admin/datacenters/:dc/undrain', notImplemented('undraining'))

app.notFound(notFound)
app.onError(onError)

export default app
