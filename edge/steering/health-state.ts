/**
 * The health state machine of one datacenter, pure so it can be tested alone: a datacenter goes
 * down after `downAfter` consecutive failures (failed probes or passive reports from the request
 * path) and comes back after `upAfter` consecutive successful probes, so one blip flips nothing.
 */
export type DatacenterState = 'healthy' | 'degraded' | 'down' | 'drained'

export interface ProbeResult {
  at: number
  ok: boolean
  /** The datacenter answered but said a service is missing or stale. */
  degraded?: boolean
  latencyMs?: number
  error?: string
}

export interface DatacenterHealth {
  up: boolean
  degraded: boolean
  drained: boolean
  /**
   * When the operator last drained or undrained it (the admin request's time): vantages merge drains
   * last-writer-wins by it (vantages/verdict.ts). Absent: never, as far as this view knows.
   */
  drainedAt?: number
  failures: number
  successes: number
  lastProbe?: ProbeResult
  /** When `up` last changed (or the registry first saw the datacenter). */
  since: number
}

export interface StateChange {
  dc: string
  /** Whose view changed; absent: the verdict over the vantages' views (vantages/verdict.ts). */
  vantage?: string
  at: number
  from: DatacenterState
  to: DatacenterState
  reason: string
}

export interface HealthPolicy {
  downAfter: number
  upAfter: number
}

export const initialHealth = (at: number): DatacenterHealth => ({
  up: true,
  degraded: false,
  drained: false,
  failures: 0,
  successes: 0,
  since: at,
})

export function stateOf(h: Pick<DatacenterHealth, 'up' | 'degraded' | 'drained'>): DatacenterState {
  if (h.drained) return 'drained'
  if (!h.up) return 'down'
  return h.degraded ? 'degraded' : 'healthy'
}

/** Applies a probe result or a passive failure report (`probe: false`). */
export function observe(
  h: DatacenterHealth,
  observation: { ok: boolean; degraded?: boolean; at: number; probe?: ProbeResult },
  policy: HealthPolicy
): DatacenterHealth {
  const next: DatacenterHealth = { ...h, lastProbe: observation.probe ?? h.lastProbe }
  if (observation.ok) {
    next.failures = 0
    next.successes = h.successes + 1
    next.degraded = observation.degraded === true
    if (!h.up && next.successes >= policy.upAfter) Object.assign(next, { up: true, since: observation.at })
  } else {
    next.successes = 0
    next.failures = h.failures + 1
    if (h.up && next.failures >= policy.downAfter) Object.assign(next, { up: false, since: observation.at })
  }
  return next
}
