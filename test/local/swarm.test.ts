/**
 * `npm run swarm -- <command>`: the usage names every command (no platform needed), and `status`
 * shows the truth now beside the edge's lagging view, against a stand-in edge and web services
 * that answer as the real ones do.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { swarmOutcome } from '../support/supervisor.ts'
import { loadEdgeSecrets } from '../../local/edge-secrets.ts'
import { freePort } from '../../local/free-port.ts'
import type { StateFile } from '../../local/state.ts'
import { Router, sendJson, serveHttp, type HttpServer } from '../../local/stand-ins/http.ts'
import type { HealthDocument } from '#shared/schemas.ts'

const swarm = (localDir: string, ...args: string[]) => swarmOutcome(localDir, args)

describe('swarm usage', () => {
  const noPlatform = mkdtempSync(join(tmpdir(), 'vtta-swarm-'))

  it.each([[], ['nope'], ['kill'], ['restart', 'fra']])(
    'names every command, restart <dc> <service> included, for %j',
    async (...args) => {
      const { code, stderr } = await swarm(noPlatform, ...args)
      expect(code).toBe(1)
      for (const command of [
        'status',
        'drain <dc>',
        'undrain <dc>',
        'kill <dc>',
        'revive <dc>',
        'pause <dc>',
        'resume <dc>',
        'restart <dc> <service>',
        'enroll <owner/repo>',
        'transfer <module> <owner/repo>',
      ])
        expect(stderr).toContain(command)
    }
  )
})

describe('swarm status', () => {
  const localDir = mkdtempSync(join(tmpdir(), 'vtta-swarm-'))
  const servers: HttpServer[] = []
  const probedAt = Date.now() - 2_000

  /** A datacenter's web service: its health document, for the edge's proof only (as the real one). */
  const webService = async (dc: string) => {
    const { secrets } = loadEdgeSecrets(localDir, { create: false })
    const router = new Router(() => ({}))
    router.get('/health', ({ req, res }) => {
      if (
        req.headers['cf-access-client-id'] !== secrets.ORIGIN_CLIENT_ID ||
        req.headers['cf-access-client-secret'] !== secrets.ORIGIN_CLIENT_SECRET
      )
        return sendJson(res, 403, { error: { code: 'origin_proof_required' } })
      const doc: HealthDocument = {
        dc,
        status: 'ok',
        nats: { connected: true, jetstream: true },
        services: {},
        at: Date.now(),
      }
      sendJson(res, 200, doc)
    })
    const server = await serveHttp((req, res) =>
      router.handle(req, res, ({ res }) => void res.writeHead(404).end())
    )
    servers.push(server)
    return server.url
  }

  beforeAll(async () => {
    loadEdgeSecrets(localDir)
    // The edge still holds ams down from before a revive, and lon healthy from before a kill.
    const edgeView = [
      { id: 'fra', state: 'healthy', lastProbe: { at: probedAt, ok: true, latencyMs: 3 } },
      { id: 'ams', state: 'down', lastProbe: { at: probedAt, ok: false, error: 'no answer within 1000 ms' } },
      { id: 'lon', state: 'healthy', lastProbe: { at: probedAt, ok: true, latencyMs: 4 } },
    ]
    const edgeRouter = new Router(() => ({}))
    edgeRouter.get('/status.json', ({ res }) =>
      sendJson(res, 200, { datacenters: edgeView.map((d) => ({ ...d, name: d.id })) })
    )
    const edge = await serveHttp((req, res) =>
      edgeRouter.handle(req, res, ({ res }) => void res.writeHead(404).end())
    )
    servers.push(edge)
    const web = { fra: await webService('fra'), ams: await webService('ams') }
    const lonGone = `http://127.0.0.1:${await freePort()}`
    const state: StateFile = {
      edge: edge.url,
      control: '',
      processes: [
        { dc: 'fra', service: 'web', pid: 0, url: web.fra },
        { dc: 'ams', service: 'web', pid: 0, url: web.ams },
        { dc: 'lon', service: 'web', pid: 0, url: lonGone },
      ],
    }
    writeFileSync(join(localDir, 'state.json'), JSON.stringify(state))
  })
  afterAll(() => Promise.all(servers.map((s) => s.close())))

  it('shows each datacenter as the edge sees it and as it answers now, and says why they differ', async () => {
    const { code, stdout } = await swarm(localDir, 'status')
    expect(code).toBe(0)
    const row = (dc: string) => stdout.split('\n').find((l) => l.startsWith(`${dc} `)) ?? ''
    expect(row('fra')).toMatch(/^fra\s+healthy\s+3 ms, \d+\.\d s ago\s+ok, \d+ ms$/)
    // Revived: the edge still says down from its last probes, the datacenter answers now.
    expect(row('ams')).toMatch(/^ams\s+down\s+no answer within 1000 ms, \d+\.\d s ago\s+ok, \d+ ms$/)
    // Killed: the edge has not noticed yet, nothing answers now.
    expect(row('lon')).toMatch(/^lon\s+healthy\s+4 ms, \d+\.\d s ago\s+unreachable, .*ECONNREFUSED/)
    expect(stdout).toContain("The edge's view lags on purpose")
  })
})
