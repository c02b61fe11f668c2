/** The notifier's own Prometheus metrics, on the runtime's registry. */
import { Counter, Gauge, type Registry } from 'prom-client'

export function createNotifierMetrics(registry: Registry) {
  return {
    announcements: new Counter({
      name: 'notifier_announcements_total',
      help: 'Release events handled, by kind (packaged, rejected) and outcome (sent, duplicate, disabled, failed)',
      labelNames: ['kind', 'outcome'] as const,
      registers: [registry],
    }),
    discordResponses: new Counter({
      name: 'notifier_discord_responses_total',
      help: 'Answers from Discord, by HTTP status (network: no answer)',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'notifier_rate_limited_total',
      help: '429 answers from Discord, by scope',
      labelNames: ['scope'] as const,
      registers: [registry],
    }),
    enabled: new Gauge({
      name: 'notifier_announcements_enabled',
      help: '1 when DISCORD_WEBHOOK_URL is configured',
      registers: [registry],
    }),
  }
}
export type NotifierMetrics = ReturnType<typeof createNotifierMetrics>
