/**
 * Issue 14: `npm start`'s real Prometheus scrapes the real running platform, and its alerts take
 * production's routes through the real Alertmanager to the operator's Discord webhook (the stand-in).
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { serviceNames } from '#shared/services.ts'
import { standIns } from '../../../local/addresses.ts'
import { embedTitles, recordedCalls } from '../../../local/stand-ins/discord.ts'
import { monitoringUrls } from '../../../local/monitoring/specs.ts'
import { projectRoot } from '../../../local/platform-specs.ts'
import { waitUntil, type E2E } from '../context.ts'

const isServiceName = (name: string) => (serviceNames as readonly string[]).includes(name)
const prometheus = monitoringUrls.prometheus
const alertmanager = monitoringUrls.alertmanager

const targetsSchema = z.object({
  data: z.object({
    activeTargets: z.array(
      z.object({
        labels: z.record(z.string(), z.string()),
        health: z.string(),
        lastError: z.string(),
        scrapeUrl: z.string(),
      })
    ),
  }),
})
const vectorSchema = z.object({
  data: z.object({
    result: z.array(
      z.object({ metric: z.record(z.string(), z.string()), value: z.tuple([z.number(), z.string()]) })
    ),
  }),
})
const alertsSchema = z.array(
  z.object({ labels: z.record(z.string(), z.string()), status: z.object({ state: z.string() }) })
)

const getJson = async (url: string): Promise<unknown> => {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`)
  return res.json()
}
const activeTargets = async () =>
  targetsSchema.parse(await getJson(`${prometheus}/api/v1/targets`)).data.activeTargets
const query = async (promql: string) =>
  vectorSchema.parse(await getJson(`${prometheus}/api/v1/query?query=${encodeURIComponent(promql)}`)).data
    .result
const alertmanagerAlerts = async () => alertsSchema.parse(await getJson(`${alertmanager}/api/v2/alerts`))

export function monitoringScenarios(e2e: E2E): void {
  describe('monitoring: Prometheus and Alertmanager in npm start', () => {
    // An alert of our own, routed as a critical one: posted first, since Alertmanager holds a new
    // group for its group_wait (10 s for critical) before notifying; checked in the last test.
    const probe = { alertname: 'LocalMonitoringProbe', severity: 'critical', dc: 'fra', probe: randomUUID() }
    let posted: Promise<Response> | undefined

    it('lists Prometheus, Alertmanager and the node exporter in state.json and prints the Prometheus URL', async () => {
      posted = fetch(`${alertmanager}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([
          { labels: probe, annotations: { summary: 'The e2e suite checks alert routing.' } },
        ]),
      })
      const services = e2e.initialState.processes.map((p) => p.service)
      for (const service of ['prometheus', 'alertmanager', 'node-exporter'])
        expect(services).toContain(service)
      expect(e2e.initialState.processes.find((p) => p.service === 'prometheus')!.url).toBe(
        'http://127.0.0.1:9090'
      )
      expect(e2e.supervisor.output()).toContain('monitoring: Prometheus http://127.0.0.1:9090')
      expect((await posted).status).toBe(200)
    })

    it('scrapes every target and finds it up: each service and nats-exporter of each datacenter, node, itself', async () => {
      const targets = await activeTargets()
      const jobs = (job: string) => targets.filter((t) => t.labels.job === job)
      const services = e2e.initialState.processes.filter((p) => isServiceName(p.service))
      expect(services.length).toBeGreaterThan(0)
      expect(jobs('services')).toHaveLength(services.length)
      for (const p of services) {
        expect(
          jobs('services').find((t) => t.scrapeUrl === `${p.internalUrl}/metrics`)?.labels,
          `${p.dc} ${p.service}`
        ).toMatchObject({ service: p.service })
      }
      expect(jobs('nats').map((t) => t.scrapeUrl)).toEqual(
        expect.arrayContaining([1, 2, 3].map((n) => `http://127.0.${n}.1:7777/metrics`))
      )
      for (const job of ['node', 'prometheus', 'alertmanager']) expect(jobs(job), job).toHaveLength(1)
      // Scraped every 5 s: within a few scrapes of start-up every one has answered.
      await waitUntil(
        async () =>
          (await activeTargets())
            .filter((t) => t.health !== 'up')
            .map((t) => `${t.scrapeUrl}: ${t.lastError}`),
        (down) => down.length === 0,
        15_000,
        'every target up'
      )
    })

    it("answers a query with each datacenter's http_requests_total, labelled by the services themselves", async () => {
      // A service counts a route once it has served it: one request for / to each datacenter.
      for (const geo of ['50.11,8.68', '52.37,4.90', '51.51,-0.13'])
        expect((await fetch(`${e2e.edge}/`, { headers: { 'x-client-geo': geo } })).status).toBe(200)
      const promql = 'sum by (dc) (http_requests_total{job="services", service="web", route="/"})'
      await waitUntil(
        () => query(promql),
        (result) => result.length === 3,
        15_000,
        'a series for each datacenter'
      )
      const result = await query(promql)
      expect(result.map((r) => r.metric.dc).sort()).toEqual(['ams', 'fra', 'lon'])
      for (const r of result) expect(Number(r.value[1]), r.metric.dc).toBeGreaterThan(0)
      // honor_labels: the services' own labels, no exported_service beside the target's.
      expect(await query('count(http_requests_total{exported_service!=""})')).toEqual([])
    })

    it('evaluates the repository rules and sends the firing Watchdog to Alertmanager', async () => {
      const rules = z
        .object({ data: z.object({ groups: z.array(z.object({ file: z.string() })) }) })
        .parse(await getJson(`${prometheus}/api/v1/rules`))
      expect(rules.data.groups.map((g) => g.file)).toContain(
        join(projectRoot, 'deploy', 'monitoring', 'alerts.yml')
      )
      await waitUntil(
        alertmanagerAlerts,
        (alerts) => alerts.some((a) => a.labels.alertname === 'Watchdog' && a.status.state === 'active'),
        15_000,
        'Watchdog active in Alertmanager'
      )
    })

    it("routes a critical alert to the operator's Discord webhook, titled with its name", async () => {
      expect((await posted)?.status).toBe(200)
      const operatorWebhookId = standIns.discord.operatorWebhookUrl.split('/api/webhooks/')[1]!.split('/')[0]
      const ms = await waitUntil(
        async () =>
          (await recordedCalls(standIns.discord.url)).filter(
            (c) =>
              c.webhookId === operatorWebhookId && embedTitles(c).some((t) => t.includes(probe.alertname))
          ),
        (calls) => calls.length > 0 && calls.every((c) => c.status < 300),
        20_000,
        'the probe alert at the Discord stand-in'
      )
      console.log(`critical alert at the operator's Discord webhook ${ms} ms after the other checks`)
    })
  })
}
