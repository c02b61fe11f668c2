/**
 * `npm start`'s Prometheus configuration, rendered from what the local platform runs (contract, issue 14):
 *   job `services`      every backend service's internal /metrics, the target labelled {service}
 *   job `nats`          every datacenter's nats-exporter
 *   job `node`          the node exporter
 *   jobs `prometheus`, `alertmanager`   themselves
 * and the repository's alert rules (deploy/monitoring/alerts.yml), alerts sent to the local Alertmanager.
 * Production (deploy/monitoring/prometheus.yml) finds the same jobs by DNS on the overlay; here every
 * address is known, so the targets are static, labelled as production labels them: a query or a
dashboard that works here works there (no `dc` on `up` here that production would not have).
Pure: returns the file's text.
 */
import { stringify } from 'yaml'

/**
 * Scrape and rule evaluation every 5 s, not production's 15 s: on one machine it costs little, and a
 * service stopped by hand shows as down (and an alert without `for:` fires) within seconds.
 */
export const LOCAL_SCRAPE_INTERVAL_SECONDS = 5

export interface ScrapeTargets {
  /** Each backend service's internal listener, or its /metrics URL. */
  services: Array<{ dc: string; service: string; url: string }>
  /** Each datacenter's nats-exporter, or its /metrics URL. */
  natsExporters: Array<{ dc: string; url: string }>
  nodeExporter: string
  prometheus: string
  alertmanager: string
}

/** `host:port` of a target's URL, as static_configs want it; every target answers Prometheus's /metrics. */
function hostPort(url: string): string {
  const { host, pathname } = new URL(url)
  if (pathname !== '/' && pathname !== '/metrics') throw new Error(`${url}: a target answers /metrics`)
  return host
}

export function renderPrometheusConfig(targets: ScrapeTargets, ruleFiles: string[]): string {
  const interval = `${LOCAL_SCRAPE_INTERVAL_SECONDS}s`
  const config = {
    global: {
      scrape_interval: interval,
      // Must not exceed the interval; an exporter asking a stopped nats-server answers within ~5 s.
      scrape_timeout: `${LOCAL_SCRAPE_INTERVAL_SECONDS - 1}s`,
      evaluation_interval: interval,
    },
    rule_files: ruleFiles,
    alerting: { alertmanagers: [{ static_configs: [{ targets: [hostPort(targets.alertmanager)] }] }] },
    scrape_configs: [
      {
        job_name: 'services',
        // The services label their own series with {service, dc} (backend/runtime/metrics.ts): those
        // win. `up` gets `service` from the target, as production's from the DNS name.
        honor_labels: true,
        static_configs: targets.services.map((t) => ({
          targets: [hostPort(t.url)],
          labels: { service: t.service },
        })),
      },
      {
        job_name: 'nats',
        // The exporter labels every series with {dc, server_name} itself.
        static_configs: [{ targets: targets.natsExporters.map((t) => hostPort(t.url)) }],
      },
      { job_name: 'node', static_configs: [{ targets: [hostPort(targets.nodeExporter)] }] },
      { job_name: 'prometheus', static_configs: [{ targets: [hostPort(targets.prometheus)] }] },
      { job_name: 'alertmanager', static_configs: [{ targets: [hostPort(targets.alertmanager)] }] },
    ],
  }
  return (
    '# Written by `npm start` (local/monitoring/prometheus-config.ts) on every start; edits are lost.\n' +
    stringify(config)
  )
}
