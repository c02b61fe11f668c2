/**
 * `npm start` runs one nats-exporter per datacenter beside its nats-server (local/platform-specs.ts):
 * on the datacenter's loopback address at 7777, with its own system-account seed and nothing else of
 * the platform's secrets, and lists it for the local Prometheus under the job `nats`.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadEdgeSecrets } from '../../local/edge-secrets.ts'
import { localEnv } from '../../local/env.ts'
import { datacenterSpecs } from '../../local/platform-specs.ts'
import catalogue from '#shared/datacenters.json' with { type: 'json' }

describe("the local platform's nats-exporters", () => {
  const dir = mkdtempSync(join(tmpdir(), 'vtta-exporter-spec-'))
  const { values } = localEnv({}, 'http://127.0.0.1:8787', loadEdgeSecrets(dir).secrets)
  const specs = datacenterSpecs(catalogue, dir, values)

  it('one per datacenter, on its loopback address, asking its own server as its own user', () => {
    expect(specs).toHaveLength(catalogue.length)
    for (const [i, d] of specs.entries()) {
      const host = `127.0.${i + 1}.1`
      const { natsExporter } = d
      expect(natsExporter).toMatchObject({
        dc: d.dc,
        service: 'nats-exporter',
        internalUrl: `http://${host}:7777`,
      })
      expect(natsExporter.args[0]).toMatch(/backend\/nats-exporter\/service\.ts$/)
      expect(natsExporter.env).toMatchObject({
        DC: d.dc,
        NATS_URL: `nats://${host}:4222`,
        NATS_SERVER_NAME: d.dc,
        INTERNAL_HTTP_HOST: host,
        INTERNAL_HTTP_PORT: '7777',
      })
      expect(natsExporter.env.NATS_NKEY_SEED_FILE).toMatch(/\/nats-exporter\.nk$/)
      // Not a service: none of the edge's credentials, no place in the services list (nor /health).
      for (const secret of ['ADMIN_TOKEN', 'PURGE_TOKEN', 'ORIGIN_CLIENT_SECRET', 'GITHUB_APP_PRIVATE_KEY'])
        expect(natsExporter.env[secret]).toBeUndefined()
      expect(d.services.map((s) => s.service)).not.toContain('nats-exporter')
    }
  })

  it("lists every datacenter's scrape targets by job", () => {
    for (const [i, d] of specs.entries()) {
      const host = `127.0.${i + 1}.1`
      expect(d.metricsTargets.nats).toEqual([`http://${host}:7777/metrics`])
      expect(d.metricsTargets.services).toEqual(d.services.map((s) => `${s.internalUrl}/metrics`))
      expect(d.metricsTargets.services).toContain(`http://${host}:9080/metrics`)
    }
  })
})
