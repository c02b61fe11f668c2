/**
 * `npm start`'s monitoring configuration (local/monitoring/): what the local Prometheus scrapes, and
 * the local Alertmanager's routes being production's with only the operator webhook replaced; both
 * files accepted by the real `promtool check config` and `amtool check-config`. (The running
 * Prometheus and Alertmanager are exercised in test/e2e/scenarios/monitoring.ts.)
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { z } from 'zod'
import { parseCatalogue } from '#shared/catalogue.ts'
import { serviceNames } from '#shared/services.ts'
import { standIns } from '../../local/addresses.ts'
import { localEnv } from '../../local/env.ts'
import { datacenterSpecs, projectRoot } from '../../local/platform-specs.ts'
import { renderAlertmanagerConfig, renderDockerTemplate } from '../../local/monitoring/alertmanager-config.ts'
import { alertmanagerSourceFile, monitoringSpecs } from '../../local/monitoring/specs.ts'

const catalogue = parseCatalogue(
  JSON.parse(readFileSync(join(projectRoot, 'shared', 'datacenters.json'), 'utf8')),
  'shared/datacenters.json'
)
const localDir = mkdtempSync(join(tmpdir(), 'vtta-monitoring-'))
const specs = monitoringSpecs(localDir, datacenterSpecs(catalogue, localDir, localEnv({}, '').values))
const prometheusFile = join(localDir, 'monitoring', 'prometheus.yml')
const alertmanagerFile = join(localDir, 'monitoring', 'alertmanager.yml')

const scrapeConfigSchema = z.object({
  job_name: z.string(),
  honor_labels: z.boolean().optional(),
  static_configs: z.array(
    z.object({ targets: z.array(z.string()), labels: z.record(z.string(), z.string()).optional() })
  ),
})
const prometheusSchema = z.looseObject({
  global: z.looseObject({ scrape_interval: z.string(), evaluation_interval: z.string() }),
  rule_files: z.array(z.string()),
  alerting: z.looseObject({}),
  scrape_configs: z.array(scrapeConfigSchema),
})
const readYaml = (path: string): unknown => parse(readFileSync(path, 'utf8'))

/** Every target of one job, with its labels. */
function targetsOf(job: string) {
  const config = prometheusSchema.parse(readYaml(prometheusFile))
  const scrape = config.scrape_configs.find((s) => s.job_name === job)
  if (!scrape) throw new Error(`no job ${job}`)
  return {
    scrape,
    targets: scrape.static_configs.flatMap((c) => c.targets.map((target) => ({ target, ...c.labels }))),
  }
}

describe('the local Prometheus configuration', () => {
  it('passes promtool check config, the repository rules included', () => {
    const out = execFileSync('promtool', ['check', 'config', prometheusFile], { encoding: 'utf8' })
    expect(out).toContain('SUCCESS')
    expect(prometheusSchema.parse(readYaml(prometheusFile)).rule_files).toEqual([
      join(projectRoot, 'deploy', 'monitoring', 'alerts.yml'),
    ])
  })

  it("has production's jobs, each keeping the scraped labels (honor_labels) as production's does", () => {
    const jobsOf = (config: unknown) =>
      z
        .object({
          scrape_configs: z.array(
            z.looseObject({ job_name: z.string(), honor_labels: z.boolean().optional() })
          ),
        })
        .parse(config)
        .scrape_configs.map((s) => [s.job_name, s.honor_labels ?? false])
    const production = readYaml(join(projectRoot, 'deploy', 'monitoring', 'prometheus.yml'))
    expect(jobsOf(readYaml(prometheusFile))).toEqual(jobsOf(production))
  })

  it('scrapes every service of every datacenter at its internal listener, the target labelled {service}', () => {
    const { scrape, targets } = targetsOf('services')
    // The services' own {service, dc} labels win, as in production.
    expect(scrape.honor_labels).toBe(true)
    expect(targets).toHaveLength(catalogue.length * serviceNames.length)
    expect(targets).toContainEqual({ target: '127.0.1.1:9080', service: 'web' })
    expect(targets).toContainEqual({ target: '127.0.2.1:9081', service: 'images' })
    expect(targets).toContainEqual({ target: '127.0.3.1:9083', service: 'notifier' })
  })

  it("scrapes each datacenter's nats-exporter on its loopback address (its series carry their dc)", () => {
    expect(targetsOf('nats').targets).toEqual(catalogue.map((_, i) => ({ target: `127.0.${i + 1}.1:7777` })))
  })

  it('scrapes the node exporter, Prometheus and Alertmanager on loopback, every 5 s', () => {
    expect(targetsOf('node').targets).toEqual([{ target: '127.0.0.1:9100' }])
    expect(targetsOf('prometheus').targets).toEqual([{ target: '127.0.0.1:9090' }])
    expect(targetsOf('alertmanager').targets).toEqual([{ target: '127.0.0.1:9093' }])
    expect(prometheusSchema.parse(readYaml(prometheusFile)).global).toMatchObject({
      scrape_interval: '5s',
      evaluation_interval: '5s',
    })
  })

  it('binds every listener to 127.0.0.1, keeps data under LOCAL_DIR and disables Alertmanager gossip', () => {
    expect(specs.map((s) => s.spec.service)).toEqual(['prometheus', 'alertmanager', 'node-exporter'])
    for (const { spec } of specs) {
      const listen = spec.args.filter((a) => a.startsWith('--web.listen-address='))
      expect(listen, spec.service).toHaveLength(1)
      expect(listen[0]).toMatch(/^--web\.listen-address=127\.0\.0\.1:\d+$/)
      expect(spec.logFile.startsWith(join(localDir, 'logs'))).toBe(true)
      for (const a of spec.args.filter((a) => /^--(storage\.(tsdb\.)?path|config\.file)=/.test(a)))
        expect(a.split('=')[1]!.startsWith(join(localDir, 'monitoring'))).toBe(true)
    }
    const alertmanager = specs.find((s) => s.spec.service === 'alertmanager')!.spec
    expect(alertmanager.args).toContain('--cluster.listen-address=')
    const prometheus = specs.find((s) => s.spec.service === 'prometheus')!.spec
    expect(prometheus.args).toContain('--storage.tsdb.retention.size=512MB')
  })
})

describe('the local Alertmanager configuration', () => {
  const receiversSchema = z.looseObject({
    route: z.unknown(),
    inhibit_rules: z.unknown().optional(),
    receivers: z.array(
      z.looseObject({
        name: z.string(),
        discord_configs: z.array(z.looseObject({ webhook_url: z.string() })).optional(),
      })
    ),
  })

  it('passes amtool check-config', () => {
    const out = execFileSync('amtool', ['check-config', alertmanagerFile], { encoding: 'utf8' })
    expect(out).toContain('SUCCESS')
  })

  it("is production's, only every Discord webhook being the stand-in's operator webhook", () => {
    const local = receiversSchema.parse(readYaml(alertmanagerFile))
    const production = receiversSchema.parse(
      parse(
        renderDockerTemplate(readFileSync(alertmanagerSourceFile, 'utf8'), {
          discord_operator_webhook_url: 'x',
        })
      )
    )
    expect(local.route).toEqual(production.route)
    expect(local.inhibit_rules).toEqual(production.inhibit_rules)
    expect(local.receivers.map((r) => r.name)).toEqual(production.receivers.map((r) => r.name))
    const webhooks = local.receivers.flatMap((r) => r.discord_configs ?? []).map((d) => d.webhook_url)
    expect(webhooks.length).toBeGreaterThan(0)
    for (const url of webhooks) expect(url).toBe(standIns.discord.operatorWebhookUrl)
  })

  it('renders the template actions Docker would: the secret, and Alertmanager templates as literals', () => {
    const source = [
      'receivers:',
      '  - name: operator',
      '    discord_configs:',
      `      - webhook_url: '{{ secret "discord_operator_webhook_url" }}'`,
      `        title: '{{ "{{ .Status }}" }} {{\`{{ .CommonLabels.dc }}\`}}'`,
      'route: { receiver: operator }',
    ].join('\n')
    const rendered = z
      .object({
        receivers: z.array(z.object({ discord_configs: z.array(z.record(z.string(), z.string())) })),
      })
      .parse(parse(renderAlertmanagerConfig(source, 'am.yml', 'http://127.0.0.1:1/hook')))
    expect(rendered.receivers[0]!.discord_configs[0]).toEqual({
      webhook_url: 'http://127.0.0.1:1/hook',
      title: '{{ .Status }} {{ .CommonLabels.dc }}',
    })
  })

  it('refuses a template action Docker would render differently, and a file without a Discord receiver', () => {
    expect(() => renderDockerTemplate('a: {{ .Status }}', {})).toThrow(/line 1: a template action/)
    expect(() => renderDockerTemplate(`a: '{{ secret "other" }}'`, {})).toThrow(/secret other/)
    const source = 'route: { receiver: none }\nreceivers: [{ name: none }]\n'
    expect(() => renderAlertmanagerConfig(source, 'am.yml', 'http://x')).toThrow(
      'am.yml: no receiver has discord_configs'
    )
  })

  it('is checked as written: a broken rendering fails amtool', () => {
    // The check above would pass vacuously if amtool accepted anything.
    const broken = join(localDir, 'broken-alertmanager.yml')
    writeFileSync(broken, 'route: { receiver: missing }\nreceivers: [{ name: other }]\n')
    expect(() => execFileSync('amtool', ['check-config', broken], { stdio: 'pipe' })).toThrow()
  })
})
