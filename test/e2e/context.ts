/** What every end-to-end scenario gets: the running platform (filled in by platform.test.ts's beforeAll). */
import { setTimeout as sleep } from 'node:timers/promises'
import type { StateFile } from '../../local/state.ts'
import type { Supervisor } from '../support/supervisor.ts'

export interface E2E {
  localDir: string
  edge: string
  supervisor: Supervisor
  /** state.json as it was right after start-up. */
  initialState: StateFile
  /** The edge settings the platform runs with (fast probes, so failover is quick to observe). */
  health: {
    probeIntervalMs: number
    probeTimeoutMs: number
    downAfter: number
    upAfter: number
    memoMs: number
  }
}

/** Polls `read` until `accept` holds; returns the time it took, or throws after `timeoutMs`. */
export async function waitUntil<T>(
  read: () => T | Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs: number,
  what: string
): Promise<number> {
  const started = Date.now()
  let last: T | undefined
  while (Date.now() - started < timeoutMs) {
    last = await read()
    if (accept(last)) return Date.now() - started
    await sleep(100)
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`)
}

/** `dc`'s state at the edge, as a client sending `headers` (e.g. x-client-geo) sees it. */
export async function datacenterState(
  edge: string,
  dc: string,
  headers: Record<string, string> = {}
): Promise<string> {
  const doc = (await (await fetch(`${edge}/status.json`, { headers })).json()) as {
    datacenters: Array<{ id: string; state: string }>
  }
  return doc.datacenters.find((d) => d.id === dc)?.state ?? 'unknown'
}
