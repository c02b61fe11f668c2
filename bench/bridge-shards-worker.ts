/**
 * The Worker of the bridge benchmark (bench/bridge-shards.ts): the edge's own NatsBridge and the
 * edge's own choice of bridge (edge/nats/bridge-stub.ts, BRIDGE_SHARDS), behind one route that does
 * what an image miss does to a bridge and nothing else.
 *
 *   GET /bridge?key=<k>[&shard=<s>]
 *                         a streamed request (`images.<dc>.transform` of the first datacenter, collapse
 *                         key k) through the bridge natsBridge names for shard key k; answers the
 *                         reply's byte count, the bridge's name in `x-bridge`. 502 when the bridge
 *                         failed; 421 when the bridge is not shard s (the load generator routes by the
 *                         shard it computed: it must be the edge's).
 *   GET /ready            the Worker is up (no bridge touched)
 *
 * The reply's bytes stop at the Worker: the bench measures the bridges, not the HTTP answer.
 */
import { Hono } from 'hono'
import { subjects } from '#shared/subjects.ts'
import type { AppEnv } from '../edge/env.ts'
import { edgeConfig } from '../edge/config.ts'
import { edgeLocationOf } from '../edge/placement/edge-location.ts'
import { natsBridge } from '../edge/nats/bridge-stub.ts'

export { NatsBridge } from '../edge/nats/bridge.ts'

const app = new Hono<AppEnv>()

// What edge/index.ts's middleware sets for every request, which natsBridge reads.
app.use(async (c, next) => {
  const config = edgeConfig(c.env)
  c.set('config', config)
  c.set('edgeLocation', edgeLocationOf(c.req.raw, config))
  await next()
})

app.get('/ready', (c) => c.text('ok'))

app.get('/bridge', async (c) => {
  const key = c.req.query('key') ?? ''
  const [dc] = c.get('config').datacenters
  if (!dc) return c.text('no datacenter', 500)
  const { bridge, natsWs, name } = natsBridge(c, dc, key)
  const shard = c.req.query('shard')
  if (shard !== undefined && !name.endsWith(`/${shard}`)) return c.text(`${name} is not shard ${shard}`, 421)
  const reply = await bridge.requestStream(
    { dc: dc.id, natsWs, subject: subjects.imageTransform(dc.id), payload: key, timeoutMs: 10_000 },
    key
  )
  if (!reply.ok) return c.text(`${reply.code}: ${reply.message}`, 502, { 'x-bridge': name })
  return c.text(String(reply.data.byteLength), 200, { 'x-bridge': name })
})

export default app
