/**
 * `/health`: the edge's own health and the datacenters it knows.
 * `/health/<dc>`: a NATS round trip to that datacenter's web service through its NatsBridge.
 */
import { Hono } from 'hono'
import { pingReplySchema, type PingRequest } from '#shared/schemas.ts'
import { subjects } from '#shared/subjects.ts'
import type { AppEnv } from '../env.ts'
import { ApiError } from '../http/errors.ts'
import { natsBridge } from '../nats/bridge-stub.ts'

export const health = new Hono<AppEnv>()

health.get('/health', (c) => {
  const config = c.get('config')
  return c.json({ status: 'ok', datacenters: config.datacenters.map((dc) => dc.id) })
})

health.get('/health/:dc', async (c) => {
  const id = c.req.param('dc')
  const dc = c.get('config').byId.get(id)
  if (!dc) throw new ApiError('unknown_datacenter', `unknown datacenter ${id}`)
  const started = Date.now()
  const ping: PingRequest = { from: 'edge', sentAt: started }
  const { bridge, natsWs } = natsBridge(c, dc, c.get('requestId'))
  const reply = await bridge.request({
    dc: id,
    natsWs,
    subject: subjects.ping(id),
    payload: JSON.stringify(ping),
    timeoutMs: 2_000,
  })
  if (!reply.ok) {
    if (reply.code === 'no_responders')
      throw new ApiError('nats_no_responders', `no web service answers in ${id}`)
    if (reply.code === 'timeout') throw new ApiError('nats_timeout', `${id} did not answer in time`)
    throw new ApiError('datacenter_unreachable', reply.message)
  }
  const pong = pingReplySchema.parse(JSON.parse(new TextDecoder().decode(reply.data)))
  c.header('x-datacenter', pong.dc)
  return c.json({ dc: pong.dc, answeredBy: pong.service, roundTripMs: Date.now() - started })
})
