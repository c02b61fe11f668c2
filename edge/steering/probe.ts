/**
 * One active probe: GET <web>/health of a datacenter with the edge's proof, within a timeout.
 * Always at the datacenter's own endpoint, never a client's leg of the emulated WAN (steering/legs.ts):
 * the HealthRegistry is one object in one place, so no client's leg is its own. Issue #16 probes from
 * several vantages.
 */
import { healthDocumentSchema } from '#shared/schemas.ts'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import type { ProbeResult } from './health-state.ts'

export async function probe(
  dc: ReachableDatacenter,
  timeoutMs: number,
  originProof: Readonly<Record<string, string>>
): Promise<ProbeResult> {
  const started = Date.now()
  const done = (result: Omit<ProbeResult, 'at' | 'latencyMs'>): ProbeResult => ({
    at: started,
    latencyMs: Date.now() - started,
    ...result,
  })
  try {
    const res = await fetch(new URL('/health', dc.endpoints.web), {
      headers: originProof,
      signal: AbortSignal.timeout(timeoutMs),
    })
    const body = await res.json().catch(() => undefined)
    const doc = healthDocumentSchema.safeParse(body)
    if (!doc.success) return done({ ok: false, error: `HTTP ${res.status}, not a health document` })
    if (doc.data.dc !== dc.id) return done({ ok: false, error: `answered as ${doc.data.dc}` })
    if (doc.data.status === 'down') return done({ ok: false, error: describeDown(doc.data.nats) })
    return done({ ok: true, degraded: doc.data.status === 'degraded' })
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError'
    return done({ ok: false, error: timedOut ? `no answer within ${timeoutMs} ms` : String(error) })
  }
}

const describeDown = (nats: { connected: boolean; jetstream: boolean }) =>
  !nats.connected ? 'NATS not connected' : !nats.jetstream ? 'JetStream not ready' : 'down'
