/**
 * The edge: the route table of the platform. Each route family lives in its own folder with its
 * helpers, its routes in `<family>/route.ts` (home/, health/, admin/, images/, webhooks/, modules/,
 * status/); HTTP pieces they share are in http/, steering and health in steering/, the NATS bridge
 * in nats/. This file only wires middleware and routes together.
 */
import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import type { AppEnv, Bindings } from './env.ts'
import { edgeConfig } from './config.ts'
import { edgeLocationOf } from './placement/edge-location.ts'
import { notFound, onError } from './http/errors.ts'
import { count } from './http/counters.ts'
import { requestLog } from './request-log.ts'
import { home } from './home/route.ts'
import { health } from './health/route.ts'
import { admin } from './admin/route.ts'
import { status } from './status/route.ts'
import { images } from './images/route.ts'
import { webhooks } from './webhooks/route.ts'
import { modules } from './modules/route.ts'
import { scheduled } from './scheduled.ts'

export { NatsBridge } from './nats/bridge.ts'
export { HealthRegistry } from './steering/health-registry.ts'

const app = new Hono<AppEnv>()

app.use(requestId())
app.use(requestLog)
app.use(async (c, next) => {
  count('requests')
  const config = edgeConfig(c.env)
  c.set('config', config)
  c.set('edgeLocation', edgeLocationOf(c.req.raw, config))
  await next()
})

app.route('/', home)
app.route('/', health)
app.route('/', status)
app.route('/', admin)
app.route('/', images)
app.route('/', webhooks)
app.route('/', modules)

app.notFound(notFound)
app.onError(onError)

export default {
  fetch: app.fetch,
  scheduled,
} satisfies ExportedHandler<Bindings>
