/**
 * Issue 4: a dying, drained or partitioned datacenter costs no client a failed request. Clients
 * near Amsterdam send a steady stream of requests while ams is killed, drained, or frozen.
 */
import { describe, expect, it } from 'vitest'
import { failed, retried, steadyLoad, type Answer, type SteadyLoad } from '../../support/steady-load.ts'
import { swarm } from '../../support/supervisor.ts'
import { datacenterState, waitUntil, type E2E } from '../context.ts'

function report(name: string, answers: Answer[], extra: Record<string, number>) {
  const figures = {
    requests: answers.length,
    failed: failed(answers).length,
    retried: retried(answers).length,
    ...extra,
  }
  console.log(
    `${name}: ${Object.entries(figures)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`
  )
}

/** Starts clients near Amsterdam and waits until ams is serving them. */
async function loadNearAms(e2e: E2E): Promise<SteadyLoad> {
  const load = steadyLoad({
    url: `${e2e.edge}/`,
    headers: { 'x-client-geo': '52.37,4.90' },
    clients: 4,
    pauseMs: 20,
    maxMs: 120_000,
  })
  await waitUntil(
    () => load.answers.filter((a) => a.dc === 'ams').length,
    (n) => n >= 20,
    15_000,
    'load on ams'
  )
  return load
}

/**
 * Answers after `t` that ams served. Where the others go is measured steering's choice (lon or fra: on
 * loopback their latencies differ by noise), so only this is asserted.
 */
const servedByAms = (load: SteadyLoad, t: number) => load.since(t).filter((a) => a.dc === 'ams')

/** Milliseconds from `t` until `count` requests started after `t` were answered elsewhere than ams. */
const servedElsewhere = (load: SteadyLoad, t: number, timeoutMs: number, count = 10) =>
  waitUntil(
    () => load.since(t).filter((a) => a.dc !== null && a.dc !== 'ams').length,
    (n) => n >= count,
    timeoutMs,
    'answers from another datacenter than ams'
  )

/** Milliseconds from `t` until `count` requests started after `t` were answered by `dc`. */
const servedBy = (load: SteadyLoad, dc: string, t: number, timeoutMs: number, count = 10) =>
  waitUntil(
    () => load.since(t).filter((a) => a.dc === dc).length,
    (n) => n >= count,
    timeoutMs,
    `answers from ${dc}`
  )

export function failoverScenarios(e2e: E2E) {
  const { probeIntervalMs, probeTimeoutMs, downAfter, upAfter, memoMs } = e2e.health
  // Down: `downAfter` failed probes (each up to the probe timeout), then isolates see it within the memo time.
  const downWindowMs = downAfter * (probeIntervalMs + probeTimeoutMs) + memoMs + 2_000
  const upWindowMs = upAfter * probeIntervalMs + memoMs + 3_000
  const amsDown = () =>
    waitUntil(
      () => datacenterState(e2e.edge, 'ams'),
      (s) => s === 'down',
      downWindowMs,
      'ams down'
    )

  describe('failover', () => {
    it('kill ams: no client request fails, traffic moves off ams within the down threshold, and comes back after revive', async () => {
      const load = await loadNearAms(e2e)
      const killedAt = Date.now()
      let revive: { took: number; back: number } | undefined
      try {
        await swarm(e2e.localDir, 'kill', 'ams')
        const downMs = await amsDown()
        const settled = Date.now() + memoMs
        await servedElsewhere(load, settled, 5_000)
        expect(servedByAms(load, settled)).toEqual([])

        const reviveStarted = Date.now()
        await swarm(e2e.localDir, 'revive', 'ams')
        const revivedAt = Date.now() // every process of ams is ready again
        revive = {
          took: revivedAt - reviveStarted,
          back: await servedBy(load, 'ams', revivedAt, upWindowMs + 5_000),
        }
        const answers = await load.stop()
        const outage = answers.filter((a) => a.at >= killedAt)
        report('kill ams', outage, {
          failoverToDownMs: downMs,
          reviveTookMs: revive.took,
          backAfterReviveMs: revive.back,
        })
        expect(failed(answers)).toEqual([])
        expect(outage.some((a) => a.dc === 'lon' || a.dc === 'fra')).toBe(true)
      } finally {
        await load.stop()
        if (!revive) await swarm(e2e.localDir, 'revive', 'ams')
      }
    })

    it('drain ams: new traffic moves off ams at once with no failed request; undrain brings it back', async () => {
      const load = await loadNearAms(e2e)
      let drained = false
      try {
        await swarm(e2e.localDir, 'drain', 'ams')
        drained = true
        const drainedAt = Date.now()
        // At once in the isolate that took the drain; every other isolate within its health memo time.
        const movedMs = await servedElsewhere(load, drainedAt, 5_000)
        const settled = drainedAt + memoMs + 500
        await servedElsewhere(load, settled, 5_000)
        expect(servedByAms(load, settled)).toEqual([])
        expect(await datacenterState(e2e.edge, 'ams')).toBe('drained')
        expect((await swarm(e2e.localDir, 'status')).split('\n').find((l) => l.startsWith('ams'))).toMatch(
          /drained/
        )

        await swarm(e2e.localDir, 'undrain', 'ams')
        drained = false
        const backMs = await servedBy(load, 'ams', Date.now(), 5_000)
        const answers = await load.stop()
        report('drain ams', answers, { movedAfterDrainMs: movedMs, backAfterUndrainMs: backMs })
        expect(failed(answers)).toEqual([])
        expect(retried(answers)).toEqual([]) // a drain is planned: nothing needs a retry
      } finally {
        await load.stop()
        if (drained) await swarm(e2e.localDir, 'undrain', 'ams')
      }
    })

    it('partition ams (processes alive but frozen): treated like a crash within the probe timeout, no failed request', async () => {
      const load = await loadNearAms(e2e)
      const frozenAt = Date.now()
      let frozen = false
      try {
        await swarm(e2e.localDir, 'pause', 'ams')
        frozen = true
        const downMs = await amsDown()
        const settled = Date.now() + memoMs
        await servedElsewhere(load, settled, 5_000)
        expect(servedByAms(load, settled)).toEqual([])

        await swarm(e2e.localDir, 'resume', 'ams')
        frozen = false
        const backMs = await servedBy(load, 'ams', Date.now(), upWindowMs + 15_000)
        const answers = await load.stop()
        const during = answers.filter((a) => a.at >= frozenAt)
        report('partition ams', during, {
          failoverToDownMs: downMs,
          backAfterResumeMs: backMs,
          longestAnswerMs: Math.max(...during.map((a) => a.ms)),
        })
        expect(failed(answers)).toEqual([])
      } finally {
        await load.stop()
        if (frozen) await swarm(e2e.localDir, 'resume', 'ams')
      }
    })
  })
}
