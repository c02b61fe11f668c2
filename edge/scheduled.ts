/**
 * The cron trigger: a backstop that ticks every health vantage (probes now, shares its view, re-arms
 * its alarm). Every vantage is tried; when any could not be ticked, the run fails naming them.
 */
import type { Bindings } from './env.ts'
import { edgeConfig } from './config.ts'
import { vantagesOf, vantageStub } from './vantages/vantage-set.ts'

export async function scheduled(_controller: ScheduledController, env: Bindings): Promise<void> {
  const vantages = vantagesOf(edgeConfig(env).datacenters)
  const ticks = await Promise.allSettled(vantages.map((v) => vantageStub(env, v).tick()))
  const failed = vantages.filter((_, i) => ticks[i]!.status === 'rejected')
  if (failed.length > 0)
    throw new AggregateError(
      ticks.flatMap((t) => (t.status === 'rejected' ? [t.reason as unknown] : [])),
      `health vantages not ticked: ${failed.map((v) => v.id).join(', ')}`
    )
}
