/**
 * The image proxy through the edge, for the images benchmark's interleaved rounds:
 *   (c) the full miss path: edge -> NatsBridge -> NATS -> image service, every request a new source
 *       URL (so neither cache helps, like (a) and (b)). The edge is the real Worker as production gets
 *       it (`wrangler deploy --dry-run` of wrangler.toml) on workerd through Miniflare, with the vars
 *       the local platform gives its edge, its Durable Objects and its rate limiter: nothing in front
 *       of it, as in production (bench/worker-process.ts).
 *   (c, wrangler dev) the same path through `npm start`'s edge, for comparison: wrangler's
 *       ProxyWorker, Miniflare's entry Worker and wrangler's dev server are in its way.
 *   (d) the edge cache-hit path (the edge of (c))
 *   (e) a bare Hono route on workerd (served the same way) returning the same bytes from memory: the
 *       floor of (d)
 * Goals at each concurrency: c/a >= 0.95, c/b >= 1.0, p99 c <= 1.2 x p99 a, d/e >= 0.9, and our
 * Worker's CPU per miss <= 3 ms (see printEdgeImageGoals for how it is measured).
 */
import { basename, relative } from 'node:path'
import { z } from 'zod'
import { unstable_getMiniflareWorkerOptions } from 'wrangler'
import { projectRoot, type Platform } from '../local/platform.ts'
import { commandLine, cpuMs, liveProcessesInGroup } from '../local/process-table.ts'
import { backendTargetNames, type BenchTarget, type ImagesBenchResults } from './images-backend.ts'
import type { Measured } from './load.ts'
import {
  edgeConfig,
  startBenchWorker,
  startBenchWorkers,
  type BenchWorker,
  type BenchWorkers,
} from './worker-process.ts'
import { ratelimitsSchema } from './miniflare-host.ts'
import { printTable } from './table.ts'

const nearFra = { 'x-client-geo': '50.11,8.68' }

/** The targets' names, by which the ratios find them. */
export const edgeTargetNames = {
  c: 'c: edge miss path (workerd: edge, NATS, images)',
  cWrangler: "c, wrangler dev: the same through npm start's edge",
  d: 'd: edge cache hit',
  e: 'e: bare Hono route, same bytes',
} as const

export const imageOptions = (width: number, quality: number) =>
  `width=${width},format=webp,quality=${quality}`

const EDGE = 'vtta-edge'
const PROBE = 'binding-probe'

/** The edge of (c) and (d), and the bare Hono route of (e), each on its own workerd. */
export interface EdgeImageWorkers {
  edge: BenchWorkers
  hono: BenchWorker
  stop(): Promise<void>
}

/**
 * Starts the real edge Worker beside the running local platform, with the very vars `npm start`
 * gives its own edge (the platform's datacenters, NATS credentials, origin proof), plus the binding
 * probe on the same workerd; and the Hono floor, serving the bytes the edge answers at `hitPath`.
 */
export async function startEdgeImageWorkers(
  platform: Platform,
  hitPath: (edgeUrl: string) => string
): Promise<EdgeImageWorkers> {
  const localEdge = platform.processes.find((p) => p.spec.service === 'edge')!
  const vars = z.record(z.string(), z.string()).parse(JSON.parse(localEdge.spec.env.EDGE_VARS ?? '{}'))
  // The probe gets the edge's rate limiter settings: the same simulation, measured alone.
  const ratelimits = ratelimitsSchema.parse(
    unstable_getMiniflareWorkerOptions(edgeConfig, '').workerOptions.ratelimits ?? {}
  )
  const edge = await startBenchWorkers('edge', [
    { name: EDGE, config: edgeConfig, vars, readyPath: '/health' },
    {
      name: PROBE,
      entry: 'binding-probe-worker.ts',
      ratelimits,
      readyPath: '/?binding=none',
    },
  ])
  try {
    const hono = await startBenchWorker(
      'hono-bytes',
      'hono-bytes-worker.ts',
      { SOURCE_URL: hitPath(edge.url(EDGE)) },
      '/ready'
    )
    return {
      edge,
      hono,
      stop: async () => {
        await hono.stop()
        await edge.stop()
      },
    }
  } catch (error) {
    await edge.stop()
    throw error
  }
}

export function edgeImageTargets(
  platform: Platform,
  workers: EdgeImageWorkers,
  ctx: { sourceUrl: string; width: number; quality: number }
): BenchTarget[] {
  const localEdge = platform.processes.find((p) => p.spec.service === 'edge')!
  const fra = platform.processes
    .filter((p) => p.spec.dc === 'fra' && ['images', 'nats'].includes(p.spec.service))
    .map((p) => p.pid)
  const path = `/img/${imageOptions(ctx.width, ctx.quality)}/${ctx.sourceUrl}`
  const edgeUrl = workers.edge.url(EDGE)
  let unique = 0
  const miss = (base: string) => () => `${base}${path}?miss=${Date.now()}-${unique++}`
  // The same HTTP client as (a) and (b), so the load generator costs each target alike. A miss counts
  // only when fra's image service answered it: a failover elsewhere would use CPU no row is charged.
  const isMiss = (res: { statusCode?: number; headers: Record<string, unknown> }) =>
    res.statusCode === 200 && res.headers['x-cache'] === 'MISS' && res.headers['x-datacenter'] === 'fra'
  const edgePids = liveProcessesInGroup(workers.edge.proc.pid)
  return [
    {
      name: edgeTargetNames.c,
      pids: [...edgePids, ...fra],
      url: miss(edgeUrl),
      headers: nearFra,
      expect: isMiss,
    },
    {
      name: edgeTargetNames.cWrangler,
      pids: [...liveProcessesInGroup(localEdge.pid), ...fra],
      url: miss(platform.edgeUrl),
      headers: nearFra,
      expect: isMiss,
    },
    { name: edgeTargetNames.d, url: `${edgeUrl}${path}?hit=1`, headers: nearFra, pids: edgePids },
    {
      name: edgeTargetNames.e,
      url: `${workers.hono.url}/bytes`,
      pids: liveProcessesInGroup(workers.hono.proc.pid),
    },
  ]
}

/** What one call of each of Miniflare's simulated bindings costs workerd, in CPU ms. */
export interface BindingCosts {
  /** One IMAGE_RATE_LIMITER.limit(). */
  rateLimit: number
  /** One Cache API miss and one put of the image's bytes. */
  cacheMissAndPut: number
}

/**
 * Asks the binding probe (bench/binding-probe-worker.ts, on the edge's workerd) for `n` calls, in
 * `concurrency` parallel chains as the misses come, and for none, in turns; takes workerd's CPU time
 * of the difference over n: median of `rounds`.
 */
export async function measureBindingCosts(
  workers: EdgeImageWorkers,
  opts: { imageBytes: number; concurrency: number; rounds: number }
): Promise<BindingCosts> {
  const pid = workers.edge.workerdPid()
  const probe = workers.edge.url(PROBE)
  const cpuOf = async (query: string) => {
    const before = cpuMs(pid)
    const res = await fetch(`${probe}/?${query}`)
    const text = await res.text()
    if (!res.ok) throw new Error(`binding probe ${query}: ${res.status} ${text}`)
    return cpuMs(pid) - before
  }
  const perCall = async (binding: string, n: number) => {
    const query = `binding=${binding}&n=${n}&parallel=${opts.concurrency}&bytes=${opts.imageBytes}`
    await cpuOf(query) // warm-up
    const costs: number[] = []
    for (let i = 0; i < opts.rounds; i++) {
      const none = await cpuOf('binding=none')
      costs.push(((await cpuOf(query)) - none) / n)
    }
    return costs.sort((a, b) => a - b)[Math.floor(opts.rounds / 2)]!
  }
  return { rateLimit: await perCall('ratelimit', 300), cacheMissAndPut: await perCall('cache', 100) }
}

/**
 * What a process of an edge path is, from its command line. wrangler's dev server runs two workerd
 * processes: its ProxyWorker on the edge's port, and ours (the Worker, its Durable Objects and
 * Miniflare's Cache API) behind it. The bench's own host runs one workerd for the edge and its probe.
 */
function processLabel(pid: number, localEdgePort: string, benchHost: Set<number>): string {
  const argv = commandLine(pid)
  if (!argv) return `pid ${pid} (exited)`
  const [command = '', ...args] = argv
  const script = args.find((a) => a.endsWith('.js') || a.endsWith('.ts'))
  if (script?.endsWith('miniflare-host.ts')) return 'node: Miniflare host (workerd output)'
  if (command.endsWith('workerd')) {
    if (args.some((a) => a.startsWith('--socket-addr=entry=') && a.endsWith(`:${localEdgePort}`)))
      return "workerd: wrangler's ProxyWorker"
    return benchHost.has(pid)
      ? 'workerd: our Worker, Durable Objects, Miniflare bindings'
      : 'workerd: our Worker, Durable Objects, Miniflare entry Worker and bindings'
  }
  if (script?.endsWith('edge-dev.ts')) return "node: wrangler's dev server (controller, log output)"
  if (command.endsWith('esbuild')) return "esbuild: wrangler's file watcher"
  if (command.endsWith('nats-server')) return 'nats-server'
  return `${basename(command)} ${script ? relative(projectRoot, script) : ''}`.trim()
}

const met = (ok: boolean) => (ok ? 'met' : 'MISSED')

export function printEdgeImageGoals(
  all: ImagesBenchResults,
  platform: Platform,
  workers: EdgeImageWorkers,
  bindings: Map<number, BindingCosts>
): void {
  const localEdgePort = new URL(platform.edgeUrl).port
  const workerdPid = workers.edge.workerdPid()
  const honoWorkerdPid = workers.hono.workerdPid()
  const hostPids = new Set(liveProcessesInGroup(workers.edge.proc.pid))
  for (const { concurrency, results } of all) {
    const r = (name: string): Measured => {
      const found = results.get(name)
      if (!found) throw new Error(`no results for ${name}`)
      return found
    }
    const [a, b] = [r(backendTargetNames.a), r(backendTargetNames.b)]
    const [c, cw, d, e] = [
      r(edgeTargetNames.c),
      r(edgeTargetNames.cWrangler),
      r(edgeTargetNames.d),
      r(edgeTargetNames.e),
    ]
    const simulated = bindings.get(concurrency) ?? { rateLimit: NaN, cacheMissAndPut: NaN }
    const workerdPerMiss = c.cpuPerRequestByPid.get(workerdPid) ?? NaN
    const ours = workerdPerMiss - simulated.rateLimit - simulated.cacheMissAndPut
    printTable(
      `image proxy through the edge: goals, concurrency ${concurrency}`,
      ['measure', 'value', 'goal', ''],
      [
        [
          'c/a throughput (edge miss path vs bare sharp)',
          c.rps / a.rps,
          '>= 0.95',
          met(c.rps / a.rps >= 0.95),
        ],
        ['c/b throughput (edge miss path vs ipx)', c.rps / b.rps, '>= 1.0', met(c.rps / b.rps >= 1)],
        ['p99 c / p99 a', c.p99 / a.p99, '<= 1.2', met(c.p99 / a.p99 <= 1.2)],
        ['d/e throughput (cache hit vs bare Hono route)', d.rps / e.rps, '>= 0.9', met(d.rps / e.rps >= 0.9)],
        ["our Worker's CPU per miss, ms (below)", ours, '<= 3', met(ours <= 3)],
        ['c, wrangler dev / a throughput', cw.rps / a.rps, '-', ''],
        ['c, wrangler dev / c throughput', cw.rps / c.rps, '-', ''],
        ['p99 c, wrangler dev / p99 a', cw.p99 / a.p99, '-', ''],
        ['CPU per image c / a (all processes of the path)', c.cpuPerRequest / a.cpuPerRequest, '-', ''],
      ]
    )
    printTable(
      `our Worker's CPU per image miss (c), concurrency ${concurrency}`,
      ['part', 'CPU ms/miss'],
      [
        ['workerd process, all of it', workerdPerMiss],
        ["- Miniflare's rate limiter (one limit() per miss)", simulated.rateLimit],
        ["- Miniflare's Cache API (one miss and one put per miss)", simulated.cacheMissAndPut],
        ['= our Worker and its Durable Objects (goal <= 3 ms)', ours],
        [
          'for scale: workerd serving the same bytes from a bare Hono route (e)',
          e.cpuPerRequestByPid.get(honoWorkerdPid) ?? NaN,
        ],
      ]
    )
    console.log(
      [
        "  workerd's CPU time (utime + stime of /proc/<pid>/stat, all threads) over the rounds of (c), less",
        '  its idle use over the same time, per miss. Our Worker, its Durable Objects (the NatsBridge holds',
        "  the NATS WebSocket) and workerd's own HTTP and WebSocket work are in it, and Miniflare's",
        "  simulations of two bindings that production runs outside our Worker. Each simulation's cost is",
        '  measured alone on the same workerd, as many at a time as the misses (bench/binding-probe-worker.ts:',
        "  workerd's CPU time of n calls minus none, over n; median of rounds) and taken off. workerd itself",
        '  reports no CPU time per request locally (its traces carry 0).',
      ].join('\n')
    )
    const rows: (string | number)[][] = []
    for (const [label, path] of [
      ['c', c],
      ['c, wrangler dev', cw],
    ] as const) {
      for (const [pid, ms] of path.cpuPerRequestByPid)
        if (Math.abs(ms) >= 0.05) rows.push([`${label}: ${processLabel(pid, localEdgePort, hostPids)}`, ms])
      rows.push([`${label}: all processes`, path.cpuPerRequest])
    }
    rows.push(['(a) bare node + sharp, for comparison', a.cpuPerRequest])
    printTable(
      `where the edge miss path's CPU goes, concurrency ${concurrency} (less each process's idle use)`,
      ['process', 'CPU ms/img'],
      rows
    )
  }
}
