/**
 * End to end on the local platform: `npm start`'s supervisor brings up three datacenters and the
 * edge once for this file (they bind fixed addresses, so there is one platform at a time), the
 * scenarios of each capability run against it in order, and Ctrl-C must leave no process behind.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../local/free-port.ts'
import { liveProcessesInGroup } from '../../local/process-table.ts'
import { alive, processesMentioning, startSupervisor } from '../support/supervisor.ts'
import { readState, type StateFile } from '../../local/state.ts'
import { errorMessage } from '#shared/error-message.ts'
import type { E2E } from './context.ts'
import { foundationScenarios } from './scenarios/foundation.ts'
import { monitoringScenarios } from './scenarios/monitoring.ts'
import { failoverScenarios } from './scenarios/failover.ts'
import { statusPageScenarios } from './scenarios/status-page.ts'
import { imageScenarios } from './scenarios/images.ts'
import { releaseScenarios } from './scenarios/releases.ts'
import { rollingRestartScenarios } from './scenarios/rolling-restarts.ts'
import { securityScenarios } from './scenarios/security.ts'
import { registryBackupScenarios } from './scenarios/registry-backup.ts'
import { startOriginServer, type OriginServer } from '../support/origin-server.ts'
import { localEnv } from '../../local/env.ts'
import sharp from 'sharp'

/**
 * What state.json held when the edge first answered /health (a script that waits for the edge then
 * reads it sees this), or why it could not be read. Polled every 50 ms from the start.
 */
async function stateWhenEdgeFirstAnswers(
  edge: string,
  localDir: string,
  exited: Promise<unknown>
): Promise<StateFile | string> {
  let gone = false
  void exited.then(() => (gone = true))
  while (!gone) {
    const ok = await fetch(`${edge}/health`, { signal: AbortSignal.timeout(1_000) }).then(
      (res) => res.ok,
      () => false
    )
    if (ok) {
      try {
        return readState(localDir)
      } catch (error) {
        return `no state.json when the edge first answered: ${errorMessage(error)}`
      }
    }
    await sleep(50)
  }
  return 'the supervisor exited before the edge answered'
}
let stateAtFirstAnswer: StateFile | string | undefined

const health = { probeIntervalMs: 1_000, probeTimeoutMs: 1_000, downAfter: 2, upAfter: 3, memoMs: 1_000 }
const e2e = { localDir: mkdtempSync(join(tmpdir(), 'vtta-e2e-')), health } as E2E & { origin: OriginServer }

beforeAll(async () => {
  // An image origin of our own, allowlisted explicitly by its 127.0.0.1:<port> (the address guard stays on).
  const photo = await sharp({ create: { width: 1200, height: 800, channels: 3, background: '#3b82f6' } })
    .composite([
      {
        input: Buffer.from(
          '<svg width="1200" height="800"><circle cx="600" cy="400" r="300" fill="#f59e0b"/></svg>'
        ),
      },
    ])
    .jpeg()
    .toBuffer()
  e2e.origin = await startOriginServer({ 'photo.jpg': { body: photo, contentType: 'image/jpeg' } })
  const port = await freePort()
  e2e.edge = `http://127.0.0.1:${port}`
  e2e.supervisor = startSupervisor({
    LOCAL_DIR: e2e.localDir,
    EDGE_PORT: String(port),
    PROBE_INTERVAL_MS: String(health.probeIntervalMs),
    PROBE_TIMEOUT_MS: String(health.probeTimeoutMs),
    DOWN_AFTER: String(health.downAfter),
    UP_AFTER: String(health.upAfter),
    HEALTH_MEMO_MS: String(health.memoMs),
    UPSTREAM_TIMEOUT_MS: '1500',
    IMAGE_SOURCE_HOSTS: `${localEnv({}, '').values.IMAGE_SOURCE_HOSTS},${e2e.origin.origin}`,
  })
  const firstAnswer = stateWhenEdgeFirstAnswers(e2e.edge, e2e.localDir, e2e.supervisor.exited)
  if (!(await e2e.supervisor.ready))
    throw new Error(`the platform did not start:\n${e2e.supervisor.output()}`)
  stateAtFirstAnswer = await firstAnswer
  e2e.initialState = readState(e2e.localDir)
}, 90_000)

afterAll(async () => {
  if (e2e.supervisor && e2e.supervisor.child.exitCode === null) {
    e2e.supervisor.child.kill('SIGINT')
    await e2e.supervisor.exited
  }
  await e2e.origin?.close()
})

describe('start-up', () => {
  it('state.json names every process, the edge and the control API before the edge first answers', () => {
    if (typeof stateAtFirstAnswer !== 'object') throw new Error(String(stateAtFirstAnswer))
    expect(stateAtFirstAnswer.edge).toBe(e2e.edge)
    expect(stateAtFirstAnswer.control).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const services = stateAtFirstAnswer.processes.map((p) => p.service)
    for (const service of ['edge', 'nats', 'web', 'github-stand-in', 'discord-stand-in'])
      expect(services).toContain(service)
  })
})

foundationScenarios(e2e)
// Before failover stops datacenters: every target is up.
monitoringScenarios(e2e)
failoverScenarios(e2e)
statusPageScenarios(e2e)
imageScenarios(e2e)
releaseScenarios(e2e)
rollingRestartScenarios(e2e)
securityScenarios(e2e)
registryBackupScenarios(e2e)

describe('Ctrl-C', () => {
  it('stops everything and leaves no process behind', async () => {
    const state = readState(e2e.localDir)
    e2e.supervisor.child.kill('SIGINT')
    expect(await e2e.supervisor.exited).toBe(0)
    for (const p of [...e2e.initialState.processes, ...state.processes]) {
      expect(alive(p.pid), `${p.dc ?? 'edge'} ${p.service} pid ${p.pid}`).toBe(false)
      // Nothing of its process group either (wrangler's workerd).
      expect(liveProcessesInGroup(p.pid), `process group of ${p.service}`).toEqual([])
    }
    expect(processesMentioning(e2e.localDir)).toEqual([])
    expect(e2e.supervisor.output()).toContain('stopped.')
  })
})

describe('npm start with a bad catalogue', () => {
  it('stops before starting anything, naming the offending field', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'vtta-cat-')), 'datacenters.json')
    writeFileSync(
      file,
      JSON.stringify([
        { id: 'fra', name: 'Frankfurt', region: 'eu', lat: 50.11, lon: 8.68 },
        { id: 'ams', name: 'Amsterdam', region: 'eu', lon: 4.9 },
      ])
    )
    const run = startSupervisor({
      DATACENTERS_FILE: file,
      LOCAL_DIR: mkdtempSync(join(tmpdir(), 'vtta-e2e-bad-')),
    })
    expect(await run.exited).toBe(1)
    expect(run.output()).toMatch(/npm start: invalid datacenter catalogue: .*datacenters\.json: \[1\]\.lat: /)
  })
})
