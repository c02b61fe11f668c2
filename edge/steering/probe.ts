/**
 * One active probe: GET <web>/health of a datacenter with the edge's proof, within a timeout. The
 * caller says at which base URL: the datacenter's own endpoint, or with the emulated WAN the leg from
 * where the prober stands (steering/legs.ts), so that a datacenter cut off from there is seen down.
 * The answer must name the datacenter expected, whatever the URL.
 */
import { healthDocumentSchema } from '#shared/schemas.ts'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import type { ProbeResult } from './health-state.ts'

export async function probe(
  dc: Pick<ReachableDatacenter, 'id'>,
  /** The datacenter's web base URL, as the prober reaches it. */
  web: string,
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
    const res = await fetch(new URL('/health', web), {
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
