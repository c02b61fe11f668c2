/** The release service's own Prometheus metrics, on the runtime's registry. */
import { Counter, Histogram, type Registry } from 'prom-client'

export function createReleaseMetrics(registry: Registry) {
  return {
    deliveries: new Counter({
      name: 'releases_deliveries_total',
      help: 'GitHub release deliveries handled, by action and outcome',
      labelNames: ['action', 'outcome'] as const,
      registers: [registry],
    }),
    rejections: new Counter({
      name: 'releases_rejections_total',
      help: 'Releases refused, by reason code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    packagingSeconds: new Histogram({
      name: 'releases_packaging_duration_seconds',
      help: 'From claiming a release to its packaged event',
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    purges: new Counter({
      name: 'releases_cache_purges_total',
      help: 'Edge cache purge requests, by result (purged, failed, skipped)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  }
}
export type ReleaseMetrics = ReturnType<typeof createReleaseMetrics>
