import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts'
import { startService } from '../support/backend-service.ts'
import { originProofHeaders } from '../support/origin-proof.ts'

const slowService = join(import.meta.dirname, '..', 'support', 'slow-service.ts')
let nats: TestNatsServer

beforeAll(async () => {
  nats = await startNatsServer('runtime')
})
afterAll(async () => {
  await nats?.dispose()
})

describe('service runtime', () => {
  it('stops at start-up with exit code 78 and a message naming a bad variable', async () => {
    const svc = await startService('web', { DC: 'FRA!', NATS_URL: nats.url }, { waitReady: false })
    expect(await svc.proc.exited).toBe('exited with code 78')
    const [line] = await svc.logs()
    expect(line).toMatchObject({ level: 'fatal', service: 'web' })
    expect(line!.msg).toContain('DC="FRA!"')
  })

  it('stops at start-up with exit code 78 when the internal port is the public one', async () => {
    const svc = await startService(
      'web',
      { DC: 'fra', NATS_URL: nats.url, HTTP_PORT: '18080', INTERNAL_HTTP_PORT: '18080' },
      { waitReady: false }
    )
    expect(await svc.proc.exited).toBe('exited with code 78')
    const [line] = await svc.logs()
    expect(line!.msg).toContain('INTERNAL_HTTP_PORT=18080: must differ from HTTP_PORT')
  })

  it('is alive but not ready while NATS is away, and ready again after reconnecting', async () => {
    const svc = await startService('web', { DC: 'ams', NATS_URL: nats.url })
    try {
      expect((await fetch(`${svc.internalUrl}/readyz`)).status).toBe(200)
      await nats.stop()
      await expect
        .poll(async () => (await fetch(`${svc.internalUrl}/readyz`)).status, { timeout: 5_000 })
        .toBe(503)
      expect(await (await fetch(`${svc.internalUrl}/readyz`)).json()).toEqual({
        status: 'not_ready',
        reason: 'nats_disconnected',
      })
      expect((await fetch(`${svc.internalUrl}/healthz`)).status).toBe(200)
      const health = await fetch(`${svc.url}/health`, { headers: originProofHeaders() })
      expect(health.status).toBe(503)
      expect(await health.json()).toMatchObject({ status: 'down', nats: { connected: false } })
      // The registry lives in NATS: 503 registry_unavailable, retry soon, the cause in the log only.
      const modules = await fetch(`${svc.url}/api/modules`, { headers: originProofHeaders() })
      expect(modules.status).toBe(503)
      expect(modules.headers.get('retry-after')).toBe('5')
      expect(modules.headers.get('cache-control')).toBe('no-store')
      expect(await modules.json()).toEqual({
        error: { code: 'registry_unavailable', message: 'the module registry cannot be read right now' },
      })
      // The log line is written after the response, so it may land a moment later.
      await expect
        .poll(() => svc.logs(), { timeout: 5_000 })
        .toContainEqual(
          expect.objectContaining({ level: 'error', code: 'registry_unavailable', path: '/api/modules' })
        )

      await nats.restart()
      await expect
        .poll(async () => (await fetch(`${svc.internalUrl}/readyz`)).status, { timeout: 10_000 })
        .toBe(200)
      const metrics = await (await fetch(`${svc.internalUrl}/metrics`)).text()
      expect(metrics).toMatch(/nats_reconnects_total\{service="web",dc="ams"\} [1-9]/)
    } finally {
      await svc.stop()
    }
  })

  it('on SIGTERM finishes in-flight work, refuses new connections, and exits 0', async () => {
    const svc = await startService('web', { DC: 'lon', NATS_URL: nats.url }, { entry: slowService })
    const inFlight = fetch(`${svc.url}/slow?ms=1500`)
    await sleep(300)
    process.kill(svc.proc.pid, 'SIGTERM')
    await sleep(200)
    await expect(fetch(`${svc.url}/slow?ms=1`)).rejects.toThrow()
    // The internal listener stays up while draining: health checks see it stopping, not gone.
    expect(await (await fetch(`${svc.internalUrl}/readyz`)).json()).toEqual({
      status: 'not_ready',
      reason: 'stopping',
    })
    const res = await inFlight
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ slept: 1500 })
    expect(await svc.proc.exited).toBe('exited with code 0')
    const messages = (await svc.logs()).map((l) => l.msg)
    expect(messages).toContain('shutting down')
    expect(messages.at(-1)).toBe('stopped')
  })

  it('exits 1 when in-flight work outlasts the grace period', async () => {
    const svc = await startService(
      'web',
      { DC: 'lon', NATS_URL: nats.url, SHUTDOWN_GRACE_MS: '500' },
      { entry: slowService }
    )
    const inFlight = fetch(`${svc.url}/slow?ms=5000`).catch(() => 'connection cut')
    await sleep(200)
    const started = Date.now()
    process.kill(svc.proc.pid, 'SIGTERM')
    expect(await svc.proc.exited).toBe('exited with code 1')
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(await inFlight).toBe('connection cut')
    expect((await svc.logs()).some((l) => String(l.msg).startsWith('shutdown took longer than 500 ms'))).toBe(
      true
    )
  })
})
