/**
 * A datacenter's health now, asked the way the edge's prober asks it (edge/steering/probe.ts):
 * GET <web>/health with the edge's origin proof, within a timeout, read as the health document.
 * `npm run swarm -- status` shows it beside the edge's view, which lags on purpose: the edge marks
 * a datacenter down after DOWN_AFTER failed probes and healthy again after UP_AFTER good ones, one
 * every PROBE_INTERVAL_MS, so right after a revive the edge still says down while it answers.
 */
import { healthDocumentSchema } from '#shared/schemas.ts'
import { fetchFailure } from '#shared/error-message.ts'

export interface HealthNow {
  /** `unreachable`: no health document came back (no answer, refused, not a health document). */
  status: 'ok' | 'degraded' | 'down' | 'unreachable'
  latencyMs: number
  detail?: string
}

export async function healthNow(
  webUrl: string,
  dc: string,
  originProof: Record<string, string>,
  timeoutMs = 2_000
): Promise<HealthNow> {
  const started = Date.now()
  const result = (status: HealthNow['status'], detail?: string): HealthNow => ({
    status,
    latencyMs: Date.now() - started,
    ...(detail ? { detail } : {}),
  })
  let res: Response
  try {
    res = await fetch(new URL('/health', webUrl), {
      headers: originProof,
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (error) {
    return result(
      'unreachable',
      error instanceof Error && error.name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : fetchFailure(error)
    )
  }
  const doc = healthDocumentSchema.safeParse(await res.json().catch(() => undefined))
  if (!doc.success) return result('unreachable', `HTTP ${res.status}, not a health document`)
  if (doc.data.dc !== dc) return result('unreachable', `answered as ${doc.data.dc}`)
  return result(doc.data.status)
}
