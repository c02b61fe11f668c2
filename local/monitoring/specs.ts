/**
 * `npm start`'s monitoring, as process specs for the supervisor (local/platform.ts): Debian's
 * `prometheus`, `prometheus-alertmanager` and `prometheus-node-exporter`, each on 127.0.0.1 only
 * (contract: 9090, 9093, 9100; Alertmanager's cluster listener off), data under
 * `<LOCAL_DIR>/monitoring/`, output to the bounded log files like every other process. Writes both
 * configuration files (rendered from the catalogue's process specs and from deploy/monitoring/) when
 * the specs are made, so a start always runs what the repository says.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { standIns } from '../addresses.ts'
import type { DatacenterSpecs } from '../platform-specs.ts'
import { projectRoot } from '../platform-specs.ts'
import type { ProcessSpec } from '../processes.ts'
import { renderAlertmanagerConfig } from './alertmanager-config.ts'
import {
  LOCAL_SCRAPE_INTERVAL_SECONDS,
  renderPrometheusConfig,
  type ScrapeTargets,
} from './prometheus-config.ts'

export const monitoringPorts = { prometheus: 9090, alertmanager: 9093, nodeExporter: 9100 } as const

export const monitoringUrls = {
  prometheus: `http://127.0.0.1:${monitoringPorts.prometheus}`,
  alertmanager: `http://127.0.0.1:${monitoringPorts.alertmanager}`,
  nodeExporter: `http://127.0.0.1:${monitoringPorts.nodeExporter}`,
} as const

/** The repository's alert rules and Alertmanager routes, shared with production. */
export const alertRulesFile = join(projectRoot, 'deploy', 'monitoring', 'alerts.yml')
export const alertmanagerSourceFile = join(projectRoot, 'deploy', 'monitoring', 'alertmanager.yml')

/** The `service` names of the monitoring processes (the supervisor stops them first). */
export const monitoringServices: ReadonlySet<string> = new Set([
  'prometheus',
  'alertmanager',
  'node-exporter',
])

/** What the preflight must find free. */
export const monitoringListeners = () => [
  { host: '127.0.0.1', port: monitoringPorts.prometheus, what: 'Prometheus' },
  { host: '127.0.0.1', port: monitoringPorts.alertmanager, what: 'Alertmanager' },
  { host: '127.0.0.1', port: monitoringPorts.nodeExporter, what: 'the node exporter' },
]

/** The targets of the local Prometheus: every datacenter's services and exporter, and the rest. */
export function scrapeTargets(datacenters: DatacenterSpecs[]): ScrapeTargets {
  return {
    services: datacenters.flatMap((d) =>
      d.services.map((s) => ({ dc: d.dc, service: s.service, url: s.internalUrl ?? s.url }))
    ),
    natsExporters: datacenters.flatMap((d) => d.metricsTargets.nats.map((url) => ({ dc: d.dc, url }))),
    nodeExporter: monitoringUrls.nodeExporter,
    prometheus: monitoringUrls.prometheus,
    alertmanager: monitoringUrls.alertmanager,
  }
}

const baseEnv = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LANG: 'C.UTF-8' })

export function monitoringSpecs(
  localDir: string,
  datacenters: DatacenterSpecs[]
): Array<{ spec: ProcessSpec; readyPath: string }> {
  const dir = resolve(localDir, 'monitoring')
  const logs = join(localDir, 'logs')
  mkdirSync(join(dir, 'prometheus'), { recursive: true })
  mkdirSync(join(dir, 'alertmanager'), { recursive: true })
  const prometheusConfig = join(dir, 'prometheus.yml')
  writeFileSync(prometheusConfig, renderPrometheusConfig(scrapeTargets(datacenters), [alertRulesFile]))
  const alertmanagerConfig = join(dir, 'alertmanager.yml')
  writeFileSync(
    alertmanagerConfig,
    renderAlertmanagerConfig(
      readFileSync(alertmanagerSourceFile, 'utf8'),
      relative(process.cwd(), alertmanagerSourceFile),
      standIns.discord.operatorWebhookUrl
    )
  )
  const listen = (port: number) => `--web.listen-address=127.0.0.1:${port}`
  return [
    {
      readyPath: '/-/ready',
      spec: {
        dc: null,
        service: 'prometheus',
        url: monitoringUrls.prometheus,
        command: 'prometheus',
        args: [
          `--config.file=${prometheusConfig}`,
          `--storage.tsdb.path=${join(dir, 'prometheus')}`,
          // Bounded on disk whatever runs: two days of local history is plenty, and never more than 512 MB.
          '--storage.tsdb.retention.time=2d',
          '--storage.tsdb.retention.size=512MB',
          listen(monitoringPorts.prometheus),
          // A firing alert is (re)sent at most this often (production: 1 m). Its first send can be
          // dropped while Prometheus has not yet taken up its Alertmanager target; locally it then
          // arrives one interval later instead of a minute later.
          `--rules.alert.resend-delay=${LOCAL_SCRAPE_INTERVAL_SECONDS}s`,
          // Links in alerts (generatorURL) open this Prometheus, not <hostname>:9090.
          `--web.external-url=${monitoringUrls.prometheus}`,
        ],
        env: baseEnv(),
        logFile: join(logs, 'prometheus.log'),
      },
    },
    {
      readyPath: '/-/ready',
      spec: {
        dc: null,
        service: 'alertmanager',
        url: monitoringUrls.alertmanager,
        command: 'prometheus-alertmanager',
        args: [
          `--config.file=${alertmanagerConfig}`,
          `--storage.path=${join(dir, 'alertmanager')}`,
          listen(monitoringPorts.alertmanager),
          // One Alertmanager: no gossip listener (its default is 0.0.0.0:9094).
          '--cluster.listen-address=',
          `--web.external-url=${monitoringUrls.alertmanager}`,
        ],
        env: baseEnv(),
        logFile: join(logs, 'alertmanager.log'),
      },
    },
    {
      readyPath: '/metrics',
      spec: {
        dc: null,
        service: 'node-exporter',
        url: monitoringUrls.nodeExporter,
        command: 'prometheus-node-exporter',
        args: [
          listen(monitoringPorts.nodeExporter),
          // The figures the rules and the dashboard read (filesystems, node_uname_info) and a few cheap
          // ones; not the ~40 default collectors, every 5 s, on a machine the whole platform shares.
          '--collector.disable-defaults',
          '--collector.filesystem',
          '--collector.uname',
          '--collector.meminfo',
          '--collector.loadavg',
          '--collector.cpu',
        ],
        env: baseEnv(),
        logFile: join(logs, 'node-exporter.log'),
      },
    },
  ]
}
