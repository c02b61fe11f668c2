/**
 * The operator API (bearer ADMIN_TOKEN): drain and undrain a datacenter. A drained datacenter
 * takes no new traffic at once (this isolate replaces its health memo; others follow within
 * HEALTH_MEMO_MS), while requests already in flight there finish.
 */
import { Hono } from 'hono'
import type { AppEnv } from '../env.ts'
import { ApiError } from '../errors.ts'
import { requireAdmin } from '../admin-auth.ts'
import { HEALTH_REGISTRY_NAME, replaceSnapshot } from '../steering/health-view.ts'
import { stateOf } from '../steering/health-state.ts'

export const admin = new Hono<AppEnv>()

admin.use('/admin/*', requireAdmin)

for (const action of ['drain', 'undrain'] as const) {
  admin.post(`/admin/datacenters/:dc/${action}`, async (c) => {
    const id = c.req.param('dc')
    if (!c.get('config').byId.has(id))
      throw new ApiError(404, 'unknown_datacenter', `unknown datacenter ${id}`)
    const snapshot = await c.env.HEALTH.getByName(HEALTH_REGISTRY_NAME).setDrained(id, action === 'drain')
    replaceSnapshot(snapshot)
    console.log(
      JSON.stringify({ level: 'info', requestId: c.get('requestId'), msg: `datacenter ${action}ed`, dc: id })
    )
    return c.json({ dc: id, state: stateOf(snapshot.datacenters[id]!) })
  })
}
