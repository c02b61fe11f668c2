/**
 * The operator API (bearer ADMIN_TOKEN; PURGE_TOKEN for the cache purge only): drain and undrain
 * a datacenter, purge cached registry paths. A drained datacenter takes no new traffic at once (this isolate replaces its health memo; others follow within
 * HEALTH_MEMO_MS), while requests already in flight there finish.
 *
 * A drain is written to every health vantage at once, stamped with this request's time, and the
 * answer says which took it (`vantages: { eu: "ok", us: "unreachable" }`): one that missed it learns
 * it from its peers within a probe interval, the latest stamp winning (vantages/verdict.ts). When
 * none took it, 503 health_unavailable.
 */
import { Hono, type MiddlewareHandler } from 'hono'
import { z } from 'zod'
import type { AppEnv } from '../env.ts'
import { ApiError } from '../http/errors.ts'
import { requireAdmin, requireBearer } from './auth.ts'
import { replaceSnapshot, requestVantage } from '../steering/health-view.ts'
import { stateOf } from '../steering/health-state.ts'
import { vantagesOf, vantageStub } from '../vantages/vantage-set.ts'
import type { HealthSnapshot } from '../vantages/views.ts'

export const admin = new Hono<AppEnv>()

/** What may be purged: the registry's cacheable paths. */
const PURGEABLE = /^\/(modules\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+){0,2}|api\/modules(\/[A-Za-z0-9._-]+)?)$/

const requirePurger = requireBearer(['purge'])
/** Every operator route needs the admin token; the purge also takes the purge token. */
const requireOperator: MiddlewareHandler<AppEnv> = (c, next) =>
  c.req.method === 'POST' && c.req.path === '/admin/cache/purge'
    ? requirePurger(c, next)
    : requireAdmin(c, next)
admin.use('/admin/*', requireOperator)

const isPurgeable = (path: unknown): path is string => typeof path === 'string' && PURGEABLE.test(path)

const purgeBodySchema = z.object({ paths: z.array(z.unknown()).min(1).max(100) })

for (const action of ['drain', 'undrain'] as const) {
  admin.post(`/admin/datacenters/:dc/${action}`, async (c) => {
    const id = c.req.param('dc')
    if (!c.get('config').byId.has(id)) throw new ApiError('unknown_datacenter', `unknown datacenter ${id}`)
    const vantages = vantagesOf(c.get('config').datacenters)
    const at = Date.now()
    const writes = await Promise.allSettled(
      vantages.map((v) => vantageStub(c.env, v).setDrained(id, action === 'drain', at))
    )
    const acknowledged: Record<string, 'ok' | 'unreachable'> = {}
    const snapshots = new Map<string, HealthSnapshot>()
    writes.forEach((write, i) => {
      const vantage = vantages[i]!.id
      acknowledged[vantage] = write.status === 'fulfilled' ? 'ok' : 'unreachable'
      if (write.status === 'fulfilled') {
        replaceSnapshot(c.env, write.value)
        snapshots.set(vantage, write.value)
      } else
        console.error(
          JSON.stringify({
            level: 'error',
            requestId: c.get('requestId'),
            msg: `${action} not written to a health vantage`,
            dc: id,
            vantage,
            error: String(write.reason),
          })
        )
    })
    // The state as this request's own vantage now says it, else as any that took the change.
    const snapshot = snapshots.get(requestVantage(c).id) ?? [...snapshots.values()][0]
    if (!snapshot) throw new ApiError('health_unavailable', `no health vantage took the ${action} of ${id}`)
    console.log(
      JSON.stringify({
        level: 'info',
        requestId: c.get('requestId'),
        msg: `datacenter ${action}ed`,
        dc: id,
        vantages: acknowledged,
      })
    )
    return c.json({ dc: id, state: stateOf(snapshot.datacenters[id]!), vantages: acknowledged })
  })
}

/**
 * `POST /admin/cache/purge` `{ "paths": ["/modules/<id>/module.json", ...] }`: drops those entries
 * from this location's cache (the release service calls it when a release is packaged). In
 * production the Workers Cache API is per location: a zone-wide purge goes through Cloudflare's
 * purge API as well (see docs/operations.md).
 */
admin.post('/admin/cache/purge', async (c) => {
  const body = purgeBodySchema.safeParse(await c.req.json<unknown>().catch(() => null))
  if (!body.success) throw new ApiError('bad_request', 'expected {"paths": [...]} with 1 to 100 paths')
  const bad = body.data.paths.find((p) => !isPurgeable(p))
  if (bad !== undefined)
    throw new ApiError('bad_request', `not a purgeable path: ${JSON.stringify(bad).slice(0, 200)}`)
  const paths = body.data.paths.filter(isPurgeable)
  const origin = new URL(c.req.url).origin
  const purged = await Promise.all(paths.map((p) => caches.default.delete(new Request(`${origin}${p}`))))
  return c.json({ purged: paths.filter((_, i) => purged[i]) })
})
