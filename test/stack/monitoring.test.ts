/**
 * The monitoring configuration (deploy/monitoring/) against the real tools: Prometheus's promtool checks the rules,
 * runs their unit tests and checks the production config; Alertmanager's amtool checks its config (with the
 * Docker template placeholder rendered) and resolves its routes; a real Alertmanager delivers to the Discord
 * stand-in and holds back a datacenter's warnings while a critical alert of it fires.
 *
 * Structure: every alert of alerts.yml has a severity, the annotations, a runbook entry under "When an alert
 * fires" in docs/operations.md, and a firing and a quiet case in alerts.test.yml (Watchdog fires always: no quiet
 * case). Mutations of the rules show the unit tests catch a changed threshold, duration or branch.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { z } from 'zod'
import { freePort } from '../../local/free-port.ts'
import { projectRoot } from '../../local/platform.ts'
import { startDiscordStandIn, embedTitles, type DiscordStandIn } from '../../local/stand-ins/discord.ts'
import { waitForHttp } from '../../local/wait.ts'
import { parseComposeYaml } from '../../deploy/check/stack-file.ts'

const dir = join(projectRoot, 'deploy', 'monitoring')
const read = (file: string) => readFileSync(join(dir, file), 'utf8')
/** `promtool test rules` takes a second alone, and several on a loaded machine. */
const promtoolTestTimeout = 90_000
const run = (command: string, args: string[], cwd = dir) =>
  spawnSync(command, args, { cwd, encoding: 'utf8' })

const ruleSchema = z.union([
  z.strictObject({
    alert: z.string(),
    expr: z.string(),
    for: z.string().optional(),
    labels: z.looseObject({ severity: z.enum(['critical', 'warning', 'info']) }),
    annotations: z.strictObject({ summary: z.string(), description: z.string(), runbook_url: z.string() }),
  }),
  z.strictObject({
    record: z.string(),
    expr: z.string(),
    labels: z.record(z.string(), z.string()).optional(),
  }),
])
const rulesSchema = z.strictObject({
  groups: z.array(z.strictObject({ name: z.string(), rules: z.array(ruleSchema) })),
})
const alertsOf = (text: string) =>
  rulesSchema
    .parse(parse(text))
    .groups.flatMap((g) => g.rules)
    .flatMap((r) => ('alert' in r ? [r] : []))

const unitTestsSchema = z.looseObject({
  tests: z.array(
    z.looseObject({
      name: z.string(),
      alert_rule_test: z
        .array(z.looseObject({ alertname: z.string(), exp_alerts: z.array(z.unknown()) }))
        .default([]),
    })
  ),
})

/** GitHub's anchor of a heading made of letters and digits only: the heading in lowercase. */
const runbookAnchors = () => {
  const runbook = readFileSync(join(projectRoot, 'docs', 'operations.md'), 'utf8')
  const section = runbook.split(/^## /m).find((s) => s.startsWith('When an alert fires\n')) ?? ''
  return new Set([...section.matchAll(/^### ([A-Za-z0-9]+)$/gm)].map((m) => m[1]!.toLowerCase()))
}

const webhookPlaceholder = '{{ secret "discord_operator_webhook_url" }}'
/** What Docker does to the config template when the task starts (template_driver golang). */
const renderAlertmanager = (webhookUrl: string) => {
  const rendered = read('alertmanager.yml').replace(webhookPlaceholder, webhookUrl)
  const at = mkdtempSync(join(tmpdir(), 'alertmanager-'))
  writeFileSync(join(at, 'alertmanager.yml'), rendered)
  return { dir: at, file: join(at, 'alertmanager.yml') }
}

describe('alert rules', () => {
  it('are valid rules for promtool', () => {
    const check = run('promtool', ['check', 'rules', 'alerts.yml'])
    expect(check.stderr + check.stdout).toContain('SUCCESS')
    expect(check.status).toBe(0)
  })

  it(
    'pass their unit tests (promtool test rules)',
    () => {
      const test = run('promtool', ['test', 'rules', 'alerts.test.yml'])
      expect(test.stdout + test.stderr).toContain('SUCCESS')
      expect(test.status).toBe(0)
    },
    promtoolTestTimeout
  )

  it('name the contract’s alerts', () => {
    const names = alertsOf(read('alerts.yml')).map((a) => a.alert)
    for (const name of [
      'DiskSpaceLow',
      'DiskWillFillSoon',
      'NatsJetStreamDisabled',
      'DatacenterDown',
      'ServiceDown',
      'DeadLettersPresent',
      'ConsumerLagGrowing',
      'Watchdog',
    ])
      expect(names).toContain(name)
    expect(new Set(names).size).toBe(names.length)
  })

  it('fire DiskSpaceLow as the disk drill needs: critical, above 80 %, for 1m', () => {
    const disk = alertsOf(read('alerts.yml')).find((a) => a.alert === 'DiskSpaceLow')
    expect(disk?.labels.severity).toBe('critical')
    expect(disk?.for).toBe('1m')
    expect(disk?.expr).toMatch(/> 80\b/)
  })

  describe.each(alertsOf(read('alerts.yml')).map((a) => [a.alert, a] as const))('%s', (name, alert) => {
    const cases = unitTestsSchema
      .parse(parse(read('alerts.test.yml')))
      .tests.flatMap((t) => t.alert_rule_test)
      .filter((c) => c.alertname === name)

    it('has a unit test case where it fires', () => {
      expect(cases.some((c) => c.exp_alerts.length > 0)).toBe(true)
    })

    // The Watchdog is the dead man's switch: it fires always, so it has no quiet case to test.
    const always = name === 'Watchdog'
    it(
      always
        ? 'fires always (vector(1)), so no case can be quiet'
        : 'has a unit test case where it does not fire',
      () => {
        if (always) expect(alert.expr.trim()).toBe('vector(1)')
        expect(cases.some((c) => c.exp_alerts.length === 0)).toBe(!always)
      }
    )

    it('links its runbook entry under "When an alert fires"', () => {
      expect(alert.annotations.runbook_url).toBe(`docs/operations.md#${name.toLowerCase()}`)
      expect(runbookAnchors().has(name.toLowerCase())).toBe(true)
    })

    it(always ? 'is only information' : 'shows the figures it fired on', () => {
      if (always) expect(alert.labels.severity).toBe('info')
      else expect(alert.annotations.description).toMatch(/\{\{ \$(value|labels)/)
    })
  })

  // Each mutation breaks one rule the way a careless edit would; the unit tests must fail. A few only: each
  // costs a promtool run.
  it.each([
    ['DiskSpaceLow', 'threshold 80 % -> 82 %', (r: Rule) => void (r.expr = r.expr.replace('> 80', '> 82'))],
    ['DiskSpaceLow', 'for 1m -> 2m', (r: Rule) => void (r.for = '2m')],
    [
      'DatacenterDown',
      'without the nats-server branch',
      (r: Rule) => void (r.expr = r.expr.split('or on (dc)')[0]!),
    ],
    [
      'ImageBusyRateHigh',
      'busy only',
      (r: Rule) => void (r.expr = r.expr.replace('busy|deadline_exceeded', 'busy')),
    ],
    [
      'DeadLettersPresent',
      'counting handled dead letters',
      (r: Rule) => void (r.expr = r.expr.split('unless on ()')[0] + ')'),
    ],
  ])(
    'unit tests catch %s changed: %s',
    (name, _change, mutate) => {
      const at = mkdtempSync(join(tmpdir(), 'rules-'))
      try {
        const rules = rulesSchema.parse(parse(read('alerts.yml')))
        const rule = rules.groups.flatMap((g) => g.rules).find((r) => 'alert' in r && r.alert === name)
        if (!rule || !('alert' in rule)) throw new Error(`no alert ${name}`)
        mutate(rule)
        writeFileSync(join(at, 'alerts.yml'), stringify(rules))
        copyFileSync(join(dir, 'alerts.test.yml'), join(at, 'alerts.test.yml'))
        expect(run('promtool', ['check', 'rules', 'alerts.yml'], at).status).toBe(0)
        const test = run('promtool', ['test', 'rules', 'alerts.test.yml'], at)
        expect(test.stdout + test.stderr).toContain(`alertname: ${name}`)
        expect(test.status).not.toBe(0)
      } finally {
        rmSync(at, { recursive: true, force: true })
      }
    },
    promtoolTestTimeout
  )
})
type Rule = Extract<z.infer<typeof ruleSchema>, { alert: string }>

describe('prometheus.yml', () => {
  const configSchema = z.looseObject({
    global: z.looseObject({ scrape_interval: z.string(), evaluation_interval: z.string() }),
    rule_files: z.array(z.string()),
    scrape_configs: z.array(
      z.looseObject({
        job_name: z.string(),
        dns_sd_configs: z
          .array(z.looseObject({ names: z.array(z.string()), type: z.literal('A'), port: z.number() }))
          .optional(),
      })
    ),
  })
  const config = configSchema.parse(parse(read('prometheus.yml')))
  const job = (name: string) => config.scrape_configs.find((j) => j.job_name === name)

  it('is a valid configuration whose rule file resolves (promtool check config)', () => {
    const check = run('promtool', ['check', 'config', 'prometheus.yml'])
    expect(check.stdout + check.stderr).toContain('1 rule files found')
    expect(check.status).toBe(0)
  })

  it('scrapes every 15s the contract’s jobs, found by Swarm DNS', () => {
    expect(config.global.scrape_interval).toBe('15s')
    expect(config.global.evaluation_interval).toBe('15s')
    expect(config.rule_files).toEqual(['alerts.yml'])
    expect(config.scrape_configs.map((j) => j.job_name).sort()).toEqual(
      ['alertmanager', 'nats', 'node', 'prometheus', 'services'].sort()
    )
    expect(job('nats')?.dns_sd_configs).toEqual([
      expect.objectContaining({ names: ['tasks.nats-exporter'], port: 7777 }),
    ])
    expect(job('node')?.dns_sd_configs).toEqual([
      expect.objectContaining({ names: ['tasks.node-exporter'], port: 9100 }),
    ])
    expect(job('prometheus')?.dns_sd_configs).toEqual([
      expect.objectContaining({ names: ['tasks.prometheus'], port: 9090 }),
    ])
    expect(job('alertmanager')?.dns_sd_configs).toEqual([
      expect.objectContaining({ names: ['tasks.alertmanager'], port: 9093 }),
    ])
  })

  const stack = z
    .looseObject({
      services: z.record(z.string(), z.unknown()),
      'x-backend-env': z.looseObject({ INTERNAL_HTTP_PORT: z.string() }),
    })
    .parse(parseComposeYaml(readFileSync(join(projectRoot, 'stack.yml'), 'utf8')))

  it('scrapes every backend service of stack.yml on its internal port', () => {
    const backend = Object.keys(stack.services).filter((s) =>
      /^(web-[a-z0-9]+|images|releases|notifier)$/.test(s)
    )
    const [sd] = job('services')?.dns_sd_configs ?? []
    expect(sd?.port).toBe(Number(stack['x-backend-env'].INTERNAL_HTTP_PORT))
    expect([...(sd?.names ?? [])].sort()).toEqual(backend.map((s) => `tasks.${s}`).sort())
  })

  it('names only services that stack.yml runs (a missing one would be a silent gap, not an error)', () => {
    const services = Object.keys(stack.services)
    const named = config.scrape_configs.flatMap((j) => (j.dns_sd_configs ?? []).flatMap((sd) => sd.names))
    expect(named.length).toBeGreaterThan(0)
    for (const name of named) expect(services).toContain(name.replace(/^tasks\./, ''))
  })
})

describe('alertmanager.yml', () => {
  it('is a Docker config template with the webhook URL as its only placeholder', () => {
    const text = read('alertmanager.yml')
    expect(text.split(webhookPlaceholder)).toHaveLength(2)
    // Docker renders every {{ }}: an Alertmanager template in here would be eaten or break the deploy.
    expect(text.replace(webhookPlaceholder, '')).not.toContain('{{')
  })

  it('is valid for amtool once the placeholder is rendered', () => {
    const rendered = renderAlertmanager('https://discord.com/api/webhooks/1/token')
    try {
      const check = run('amtool', ['check-config', rendered.file])
      expect(check.stdout + check.stderr).toContain('SUCCESS')
      expect(check.status).toBe(0)
    } finally {
      rmSync(rendered.dir, { recursive: true, force: true })
    }
  })

  it.each([
    [['alertname=DiskSpaceLow', 'severity=critical', 'dc=fra1'], 'operator-discord'],
    [['alertname=ConsumerLagGrowing', 'severity=warning'], 'operator-discord'],
    [['alertname=Watchdog', 'severity=info'], 'heartbeat'],
  ])('routes %o to %s', (labels, receiver) => {
    const rendered = renderAlertmanager('https://discord.com/api/webhooks/1/token')
    try {
      const routes = run('amtool', [
        'config',
        'routes',
        'test',
        `--config.file=${rendered.file}`,
        `--verify.receivers=${receiver}`,
        ...labels,
      ])
      expect(routes.stdout.trim()).toBe(receiver)
      expect(routes.status).toBe(0)
    } finally {
      rmSync(rendered.dir, { recursive: true, force: true })
    }
  })
})

describe('a real Alertmanager with this configuration', () => {
  let discord: DiscordStandIn
  let alertmanager: ChildProcess
  let rendered: { dir: string; file: string }
  let api: string

  beforeAll(async () => {
    discord = await startDiscordStandIn()
    rendered = renderAlertmanager(discord.webhookUrl)
    const port = await freePort()
    api = `http://127.0.0.1:${port}`
    alertmanager = spawn(
      'prometheus-alertmanager',
      [
        `--config.file=${rendered.file}`,
        `--storage.path=${join(rendered.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        // One instance: no gossip port.
        '--cluster.listen-address=',
      ],
      { stdio: 'ignore' }
    )
    const exited = new Promise<string>((resolve) =>
      alertmanager.once('exit', (code) => resolve(`exited ${code}`))
    )
    await waitForHttp(`${api}/-/ready`, { timeoutMs: 15_000, what: 'alertmanager', abort: exited })
  })

  afterAll(async () => {
    alertmanager?.kill()
    await discord?.stop()
    if (rendered) rmSync(rendered.dir, { recursive: true, force: true })
  })

  it('tells the operator’s Discord channel of a critical alert, holds back that datacenter’s warnings, not the Watchdog', async () => {
    const post = await fetch(`${api}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          labels: {
            alertname: 'DiskSpaceLow',
            severity: 'critical',
            dc: 'fra1',
            mountpoint: '/var/lib/docker',
          },
        },
        {
          labels: {
            alertname: 'DiskWillFillSoon',
            severity: 'warning',
            dc: 'fra1',
            mountpoint: '/var/lib/docker',
          },
        },
        {
          labels: {
            alertname: 'DiskWillFillSoon',
            severity: 'warning',
            dc: 'ams3',
            mountpoint: '/var/lib/docker',
          },
        },
        { labels: { alertname: 'Watchdog', severity: 'info' } },
      ]),
    })
    expect(post.status).toBe(200)

    const alertsSchema = z.array(
      z.looseObject({
        labels: z.record(z.string(), z.string()),
        status: z.looseObject({ state: z.string(), inhibitedBy: z.array(z.string()) }),
      })
    )
    const alerts = alertsSchema.parse(await (await fetch(`${api}/api/v2/alerts`)).json())
    const state = (alertname: string, dc: string) =>
      alerts.find((a) => a.labels.alertname === alertname && a.labels.dc === dc)?.status
    expect(state('DiskWillFillSoon', 'fra1')).toMatchObject({ state: 'suppressed' })
    expect(state('DiskWillFillSoon', 'fra1')?.inhibitedBy).toHaveLength(1)
    expect(state('DiskWillFillSoon', 'ams3')).toMatchObject({ state: 'active', inhibitedBy: [] })
    expect(state('DiskSpaceLow', 'fra1')).toMatchObject({ state: 'active' })

    // Critical: group_wait 10s.
    const deadline = Date.now() + 20_000
    while (discord.calls().length === 0 && Date.now() < deadline) await sleep(250)
    const titles = discord.calls().flatMap(embedTitles)
    expect(titles).toHaveLength(1)
    expect(titles[0]).toContain('[FIRING:1] DiskSpaceLow')
    expect(titles[0]).toContain('fra1')
    expect(discord.calls().every((c) => c.status < 300)).toBe(true)
    expect(titles.join()).not.toContain('Watchdog')
  }, 40_000)
})
