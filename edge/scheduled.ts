/** The cron trigger: a backstop that probes now and re-arms the HealthRegistry's alarm. */
import type { Bindings } from './env.ts'
import { HEALTH_REGISTRY_NAME } from './steering/health-view.ts'

export async function scheduled(_controller: ScheduledController, env: Bindings): Promise<void> {
  await env.HEALTH.getByName(HEALTH_REGISTRY_NAME).tick()
}
