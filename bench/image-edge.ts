/**
 * The image proxy through the edge, for the images benchmark's interleaved rounds:
 *   (c) the full miss path: edge (wrangler dev) -> NatsBridge -> NATS -> image service, every
 *       request a new source URL (so neither cache helps, like (a) and (b))
 *   (d) the edge cache-hit path
 *   (e) a bare Hono route on workerd returning the same bytes from memory: the floor of (d)
 */
import { basename, relative } from 'node:path'
import { projectRoot, type Platform } from '../local/platform.ts'
import { commandLine, liveProcessesInGroup } from '../local/process-table.ts'
import type { BenchTarget, ImagesBenchResults } from './images-backend.ts'
import type { BenchWorker } from './worker-process.ts'
import { printTable } from './table.ts'

const nearFra = { 'x-client-geo': '50.11,8.68' }

export const imageOptions = (width: number, quality: number) =>
  `width=${width},format=webp,quality=${quality}`

export function edgeImageTargets(
  platform: Platform,
  hono: BenchWorker,
  ctx: { sourceUrl: string; width: number; quality: number }
): BenchTarget[] {
  const edge = platform.processes.find((p) => p.spec.service === 'edge')!
  const fra = platform.processes.filter(
    (p) => p.spec.dc === 'fra' && ['images', 'nats'].includes(p.spec.service)
  )
  const edgePids = liveProcessesInGroup(edge.pid)
  const base = `${platform.edgeUrl}/img/${imageOptions(ctx.width, ctx.quality)}/${ctx.sourceUrl}`
  let unique = 0
  return [
    {
      name: 'c: edge miss path (edge, NATS, images)',
      pids: [...edgePids, ...fra.map((p) => p.pid)],
      // The same HTTP client as (a) and (b), so the load generator costs each target alike.
      url: () => `${base}?miss=${Date.now()}-${unique++}`,
      headers: nearFra,
      expect: (res) => res.statusCode === 200 && res.headers['x-cache'] === 'MISS',
    },
    { name: 'd: edge cache hit', url: `${base}?hit=1`, headers: nearFra, pids: edgePids },
    {
      name: 'e: bare Hono route, same bytes',
      url: `${hono.url}/bytes`,
      pids: liveProcessesInGroup(hono.proc.pid),
    },
  ]
}

/**
 * What a process of the edge path is, from its command line. wrangler's dev server runs two workerd
 * processes: its ProxyWorker on the edge's port, and ours (the Worker, its Durable Objects and
 * Miniflare's Cache API) behind it.
 */
function processLabel(pid: number, edgePort: string): string {
  const argv = commandLine(pid)
  if (!argv) return `pid ${pid} (exited)`
  const [command = '', ...args] = argv
  const script = args.find((a) => a.endsWith('.js') || a.endsWith('.ts'))
  if (command.endsWith('workerd'))
    return args.some((a) => a.startsWith('--socket-addr=entry=') && a.endsWith(`:${edgePort}`))
      ? "workerd: wrangler's ProxyWorker"
      : 'workerd: our Worker, Durable Objects, Miniflare Cache API'
  if (script?.endsWith('edge-dev.ts')) return "node: wrangler's dev server (controller, log output)"
  if (command.endsWith('esbuild')) return "esbuild: wrangler's file watcher"
  if (command.endsWith('nats-server')) return 'nats-server'
  return `${basename(command)} ${script ? relative(projectRoot, script) : ''}`.trim()
}

export function printEdgeImageRatios(all: ImagesBenchResults, edgeUrl: string): void {
  const edgePort = new URL(edgeUrl).port
  for (const { concurrency, results } of all) {
    const r = (prefix: string) => [...results].find(([name]) => name.startsWith(prefix))![1]
    const [a, b, c, d, e] = [r('a:'), r('b:'), r('c: edge'), r('d:'), r('e:')]
    printTable(
      `image proxy through the edge: ratios, concurrency ${concurrency}`,
      ['ratio', 'value', 'goal'],
      [
        ['c/a throughput (edge miss path vs bare sharp)', c.rps / a.rps, '>= 0.90'],
        ['c/b throughput (edge miss path vs ipx)', c.rps / b.rps, '>= 1.0'],
        ['d/e throughput (cache hit vs bare Hono route)', d.rps / e.rps, '>= 0.8'],
        ['p99 c / p99 a', c.p99 / a.p99, concurrency === 4 ? '<= 1.3' : '-'],
        ['CPU per image c / a (all processes of the path)', c.cpuPerRequest / a.cpuPerRequest, '-'],
      ]
    )
    const rows: (string | number)[][] = [...c.cpuPerRequestByPid]
      .filter(([, ms]) => ms >= 0.05)
      .map(([pid, ms]) => [processLabel(pid, edgePort), ms])
    rows.push(['all of (c)', c.cpuPerRequest], ['(a) bare node + sharp, for comparison', a.cpuPerRequest])
    printTable(
      `where the edge miss path's CPU goes, concurrency ${concurrency} (less each process's idle use)`,
      ['process', 'CPU ms/img'],
      rows
    )
  }
}
