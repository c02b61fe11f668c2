/** Issue 2: the platform as `npm start` brings it up: each datacenter serves its clients, over HTTP and NATS. */
import { describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../../local/free-port.ts'
import { commandLine, liveProcessesInGroup } from '../../../local/process-table.ts'
import { alive, startSupervisor } from '../../support/supervisor.ts'
import type { E2E } from '../context.ts'
import { loadEdgeSecrets } from '../../../local/edge-secrets.ts'
import { originProofHeaders } from '../../support/origin-proof.ts'

export function foundationScenarios(e2e: E2E) {
  describe('the local platform', () => {
    it('starts to ready within 30 s and prints what runs where', () => {
      const seconds = Number(/ready in ([\d.]+) s/.exec(e2e.supervisor.output())![1])
      console.log(`platform ready in ${seconds} s`)
      expect(seconds).toBeLessThan(30)
      for (const dc of ['fra', 'ams', 'lon'])
        expect(e2e.supervisor.output()).toMatch(
          new RegExp(`${dc}\\s+web\\s+\\d+\\s+http://127\\.0\\.\\d\\.1:8080`)
        )
    })

    it('writes state.json with every process, each datacenter on its own loopback address', () => {
      const { processes } = e2e.initialState
      const byDc = (dc: string) => processes.filter((p) => p.dc === dc).map((p) => p.service)
      expect(byDc('fra')).toEqual(expect.arrayContaining(['nats', 'web']))
      expect(processes.find((p) => p.dc === 'ams' && p.service === 'web')!.url).toBe('http://127.0.2.1:8080')
      expect(processes.find((p) => p.dc === 'lon' && p.service === 'nats')!.url).toBe('nats://127.0.3.1:4222')
      expect(processes.find((p) => p.service === 'edge')!.url).toBe(e2e.edge)
      for (const p of processes) expect(alive(p.pid), `${p.dc} ${p.service}`).toBe(true)
    })

    it.each([
      ['fra', '50.11,8.68'],
      ['ams', '52.37,4.90'],
      ['lon', '51.51,-0.13'],
    ])('serves / to a client near %s from %s', async (dc, geo) => {
      const res = await fetch(`${e2e.edge}/`, { headers: { 'x-client-geo': geo } })
      expect(res.status).toBe(200)
      expect(res.headers.get('x-datacenter')).toBe(dc)
      expect(await res.text()).toContain(`data-datacenter="${dc}"`)
    })

    it.each(['fra', 'ams', 'lon'])('reaches %s over NATS through the edge bridge', async (dc) => {
      const res = await fetch(`${e2e.edge}/health/${dc}`)
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ dc, answeredBy: 'web' })
    })

    it('shows each datacenter healthy, NATS clustered and JetStream up', async () => {
      // Directly, as the edge does: with the proof `npm start` generated.
      const headers = originProofHeaders(loadEdgeSecrets(e2e.localDir).secrets)
      for (const p of e2e.initialState.processes.filter((p) => p.service === 'web')) {
        const doc = (await (await fetch(`${p.url}/health`, { headers })).json()) as {
          status: string
          nats: object
        }
        expect(doc).toMatchObject({ status: 'ok', nats: { connected: true, jetstream: true } })
      }
      const routez = (await (await fetch('http://127.0.1.1:8222/routez')).json()) as { num_routes: number }
      expect(routez.num_routes).toBe(2)
    })

    it('logs each request that reached a datacenter once to the bounded edge log, with no inspector holding the lines', async () => {
      const edgeLog = () => readFileSync(join(e2e.localDir, 'logs', 'edge.log'), 'utf8')
      const ids: string[] = []
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${e2e.edge}/health/fra`)
        expect(res.status).toBe(200)
        ids.push(res.headers.get('x-request-id')!)
        await expect.poll(edgeLog, { timeout: 5_000 }).toContain(`"requestId":"${ids[i]}"`)
      }
      // One line per request, the Worker's: by the second one's line, a line of wrangler's own for
      // the first request would be there too.
      const log = edgeLog()
      for (const id of ids) expect(log.split(`"requestId":"${id}"`)).toHaveLength(2)
      expect(log).not.toContain('GET /health/fra 200')
      // A DevTools inspector on the Worker would make wrangler keep every console line in memory.
      const edge = e2e.initialState.processes.find((p) => p.service === 'edge')!
      const workerd = liveProcessesInGroup(edge.pid)
        .map((pid) => commandLine(pid) ?? [])
        .filter(([command]) => command?.endsWith('workerd'))
      expect(workerd.length).toBeGreaterThan(0)
      for (const argv of workerd) expect(argv.some((a) => a.startsWith('--inspector-addr'))).toBe(false)
    })

    it('refuses a second platform on the same addresses with a clear message', async () => {
      const second = startSupervisor({
        LOCAL_DIR: mkdtempSync(join(tmpdir(), 'vtta-e2e-2-')),
        EDGE_PORT: String(await freePort()),
      })
      expect(await second.exited).toBe(1)
      expect(second.output()).toMatch(
        /127\.0\.\d+\.1:\d+ \(.+\) is already in use; is another `npm start` running\?/
      )
    })
  })
}
