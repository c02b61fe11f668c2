/**
 * A service built on the shared runtime whose only work is `GET /slow?ms=N`, tracked as in-flight
 * work, so the runtime's graceful shutdown can be observed from outside.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { baseConfigSchema } from '../../backend/runtime/config.ts'
import { runService } from '../../backend/runtime/service.ts'

await runService({
  name: 'web',
  config: baseConfigSchema,
  start({ http, inFlight }) {
    http.get('/slow', async (req, res) => {
      const ms = Math.min(Number(req.query.ms ?? 1000), 60_000)
      await inFlight.track(() => sleep(ms))
      res.json({ slept: ms })
    })
    return {}
  },
})
