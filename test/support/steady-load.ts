/**
 * A steady, bounded stream of requests on loopback, recording every answer: which datacenter
 * served it, whether it was retried on another one, and every failure. Stops by itself after
 * `maxMs` even if nobody stops it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
export interface Answer {
  at: number
  status: number | 'error'
  dc: string | null
  failoverFrom: string | null
  /** `x-steering`: why the edge chose its first datacenter (`exploration`: on purpose elsewhere). */
  steering: string | null
  ms: number
}

export interface SteadyLoad {
  answers: Answer[]
  /** Answers since `t` (ms since epoch). */
  since(t: number): Answer[]
  stop(): Promise<Answer[]>
}

export function steadyLoad(opts: {
  url: string
  /** A URL per request instead of `url` (e.g. to make every request a cache miss). */
  urlFor?: () => string
  headers?: Record<string, string>
  clients: number
  pauseMs: number
  maxMs: number
}): SteadyLoad {
  const answers: Answer[] = []
  const deadline = Date.now() + opts.maxMs
  let running = true
  const client = async () => {
    while (running && Date.now() < deadline) {
      const t0 = Date.now()
      try {
        const res = await fetch(opts.urlFor?.() ?? opts.url, {
          headers: opts.headers,
          signal: AbortSignal.timeout(20_000),
        })
        await res.arrayBuffer()
        answers.push({
          at: t0,
          status: res.status,
          dc: res.headers.get('x-datacenter'),
          failoverFrom: res.headers.get('x-failover-from'),
          steering: res.headers.get('x-steering'),
          ms: Date.now() - t0,
        })
      } catch {
        answers.push({
          at: t0,
          status: 'error',
          dc: null,
          failoverFrom: null,
          steering: null,
          ms: Date.now() - t0,
        })
      }
      await sleep(opts.pauseMs)
    }
  }
  const clients = Array.from({ length: opts.clients }, client)
  return {
    answers,
    since: (t) => answers.filter((a) => a.at >= t),
    async stop() {
      running = false
      await Promise.all(clients)
      return answers
    },
  }
}

export const failed = (answers: Answer[]) => answers.filter((a) => a.status === 'error' || a.status >= 500)
export const retried = (answers: Answer[]) => answers.filter((a) => a.failoverFrom !== null)
