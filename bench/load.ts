/**
 * A closed-loop HTTP load generator: `concurrency` clients, each sending its next request when the
 * previous one is answered, for `durationMs`. Reports throughput and latency percentiles.
 */
import { Agent, request, type IncomingMessage } from 'node:http'
import { setTimeout } from 'node:timers/promises'
import { cpuMs } from '../local/process-table.ts'

export interface LoadResult {
  requests: number
  errors: number
  rps: number
  p50: number
  p99: number
}

export interface Target {
  name: string
  /** A function gives each request its own URL (a cache-busting query, say). */
  url: string | (() => string)
  headers?: Record<string, string>
  /** What else a successful answer must show, beyond a status under 400. */
  expect?: (res: IncomingMessage) => boolean
}

/** A target that is not an HTTP URL (a NATS request, say): `send` makes one request and says if it succeeded. */
export interface CallTarget {
  name: string
  send: () => Promise<boolean>
}

/** The p-th percentile of ascending samples. */
export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN

/** The URL of a target's next request. */
export const targetUrl = (target: Target): string =>
  typeof target.url === 'function' ? target.url() : target.url

function once(agent: Agent, target: Target): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(targetUrl(target), { agent, headers: target.headers }, (res) => {
      res.resume()
      res.on('end', () => resolve((res.statusCode ?? 500) < 400 && (target.expect?.(res) ?? true)))
    })
    req.on('error', () => resolve(false))
    req.end()
  })
}

export async function load(
  target: Target | CallTarget,
  concurrency: number,
  durationMs: number
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const latencies: number[] = []
  let errors = 0
  const started = performance.now()
  const deadline = started + durationMs
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now()
        const ok = 'send' in target ? await target.send().catch(() => false) : await once(agent, target)
        latencies.push(performance.now() - t0)
        if (!ok) errors++
      }
    })
  )
  const elapsed = performance.now() - started
  agent.destroy()
  latencies.sort((a, b) => a - b)
  return {
    requests: latencies.length,
    errors,
    rps: (latencies.length / elapsed) * 1000,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  }
}

/**
 * CPU ms per second each process uses with no load at all: what it does anyway (the edge's health
 * probes, the services' heartbeats). `interleaved` takes it off every round, so a request is charged
 * only what it adds. Measure over a few seconds: the busiest of these runs every 5 s.
 */
export async function idleCpu(pids: number[], ms: number): Promise<Map<number, number>> {
  const before = pids.map(cpuMs)
  const t0 = performance.now()
  await setTimeout(ms)
  const seconds = (performance.now() - t0) / 1000
  return new Map(pids.map((pid, i) => [pid, (cpuMs(pid) - before[i]!) / seconds]))
}

export interface Measured extends LoadResult {
  /** CPU ms per request of the target's processes (`pids`) beyond their idle use, NaN when it names none. */
  cpuPerRequest: number
  /** The same, per process: where a path's cost goes. */
  cpuPerRequestByPid: Map<number, number>
}

/**
 * Runs every target in interleaved rounds (the machine is shared and noisy: a slow minute then
 * hurts every target alike; the order is reversed every other round, so no target always follows
 * the same one) and merges the rounds of each target: medians of rps and latencies, and the CPU
 * its processes (`pids`) used per request, less their `idle` use (see idleCpu) over the round.
 */
export async function interleaved(
  targets: Array<(Target | CallTarget) & { pids?: number[] }>,
  opts: {
    concurrency: number
    rounds: number
    roundMs: number
    warmupMs?: number
    idle?: Map<number, number>
  }
): Promise<Map<string, Measured>> {
  const runs = new Map<string, Array<LoadResult & { cpu: number[] }>>(targets.map((t) => [t.name, []]))
  for (const target of targets) await load(target, opts.concurrency, opts.warmupMs ?? 300) // warm-up
  for (let round = 0; round < opts.rounds; round++) {
    for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
      const pids = target.pids ?? []
      const before = pids.map(cpuMs)
      const t0 = performance.now()
      const result = await load(target, opts.concurrency, opts.roundMs)
      const seconds = (performance.now() - t0) / 1000
      const cpu = pids.map((pid, i) => cpuMs(pid) - before[i]! - (opts.idle?.get(pid) ?? 0) * seconds)
      runs.get(target.name)!.push({ ...result, cpu })
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  return new Map(
    targets.map((t) => {
      const rs = runs.get(t.name)!
      const requests = rs.reduce((n, r) => n + r.requests, 0)
      const byPid = new Map(
        (t.pids ?? []).map((pid, i) => [pid, rs.reduce((n, r) => n + r.cpu[i]!, 0) / Math.max(1, requests)])
      )
      return [
        t.name,
        {
          requests,
          errors: rs.reduce((n, r) => n + r.errors, 0),
          rps: median(rs.map((r) => r.rps)),
          p50: median(rs.map((r) => r.p50)),
          p99: median(rs.map((r) => r.p99)),
          cpuPerRequest: byPid.size ? [...byPid.values()].reduce((a, b) => a + b, 0) : NaN,
          cpuPerRequestByPid: byPid,
        },
      ]
    })
  )
}
