/**
 * Runs Workers for the benchmarks the way production runs them: each bundled by `wrangler deploy
 * --dry-run` from its wrangler config (the bytes `wrangler deploy` would upload), then served by
 * workerd through Miniflare's API (bench/miniflare-host.ts, a child process), each Worker on a socket
 * of its own. Nothing else is in a request's path: no wrangler dev ProxyWorker, no file watcher, no
 * Miniflare entry Worker. The bindings are the config's (Durable Objects, rate limiter, Cache API),
 * as Miniflare simulates them, with `vars` over its vars.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectRoot } from '../local/platform-specs.ts'
import { startProcess, stopProcess, type Supervised } from '../local/processes.ts'
import { freePort } from '../local/free-port.ts'
import { waitForHttp } from '../local/wait.ts'
import { commandLine, liveProcessesInGroup } from '../local/process-table.ts'
import type { HostedWorker } from './miniflare-host.ts'

/** The edge's own wrangler config: the real Worker, its Durable Objects and its rate limiter. */
export const edgeConfig = join(projectRoot, 'wrangler.toml')

/** A Worker to serve: the edge (its wrangler config) or a Worker of the bench (`bench/<entry>`). */
export type WorkerSpec = {
  name: string
  /** Over the config's vars (secrets too: Miniflare has no difference). */
  vars?: Record<string, string>
  /** Rate limiters this Worker gets besides its config's, as Miniflare options. */
  ratelimits?: HostedWorker['ratelimits']
  /** Polled until it answers 2xx: the Worker is up. */
  readyPath: string
} & ({ config: string } | { entry: string })

export interface BenchWorkers {
  /** Each Worker's URL by name. */
  url(name: string): string
  /** The host (node, Miniflare) and its workerd. */
  proc: Supervised
  /** The workerd process that runs every Worker of this host (their CPU is its CPU). */
  workerdPid: () => number
  stop: () => Promise<void>
}

/**
 * A wrangler config in `dir` for a Worker of the bench (`bench/<entry>`): no bindings of its own, or the
 * TOML lines in `bindings` (a Durable Object binding and its migration, say).
 */
export function benchConfig(
  dir: string,
  name: string,
  entry: string,
  bindings: readonly string[] = []
): string {
  const config = join(dir, `${name}.wrangler.toml`)
  writeFileSync(
    config,
    [
      `name = "${name}"`,
      `main = "${join(projectRoot, 'bench', entry)}"`,
      'compatibility_date = "2026-11-01"',
      ...bindings,
      '',
    ].join('\n')
  )
  return config
}

/** `wrangler deploy --dry-run`: the bundle production would get, as a file in `outDir`. */
async function bundle(config: string, outDir: string): Promise<string> {
  mkdirSync(outDir, { recursive: true })
  const build = startProcess({
    dc: null,
    service: 'wrangler-build',
    url: '',
    command: process.execPath,
    args: [
      join(projectRoot, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
      'deploy',
      '--dry-run',
      '--config',
      config,
      // The top-level environment (the one `npm start` runs), said explicitly: no warning about it.
      '--env=',
      '--outdir',
      outDir,
    ],
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      WRANGLER_SEND_METRICS: 'false',
      WRANGLER_WRITE_LOGS: 'false',
      NO_COLOR: '1',
    },
    logFile: `${outDir}.log`,
  })
  const how = await build.exited
  if (how !== 'exited with code 0') throw new Error(`wrangler deploy --dry-run ${config}: ${how}`)
  const script = readdirSync(outDir).find((f) => f.endsWith('.js'))
  if (!script) throw new Error(`wrangler deploy --dry-run ${config}: no bundle in ${outDir}`)
  return join(outDir, script)
}

/** Bundles each Worker and serves them all from one Miniflare (one workerd process). */
export async function startBenchWorkers(label: string, specs: WorkerSpec[]): Promise<BenchWorkers> {
  const dir = mkdtempSync(join(tmpdir(), `vtta-bench-${label}-`))
  const hosted: HostedWorker[] = []
  for (const spec of specs) {
    const config = 'config' in spec ? spec.config : benchConfig(dir, spec.name, spec.entry)
    const script = await bundle(config, join(dir, 'build', spec.name))
    hosted.push({
      name: spec.name,
      config,
      script,
      vars: spec.vars ?? {},
      port: await freePort(),
      ratelimits: spec.ratelimits,
    })
  }
  const urls = new Map(hosted.map((w) => [w.name, `http://127.0.0.1:${w.port}`]))
  const proc = startProcess({
    dc: null,
    service: label,
    url: urls.get(hosted[0]!.name)!,
    command: process.execPath,
    args: [join(projectRoot, 'bench', 'miniflare-host.ts')],
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      BENCH_WORKERS: JSON.stringify({
        workers: hosted,
        persist: join(dir, 'state'),
        workerLog: join(dir, 'workers.log'),
      }),
    },
    logFile: join(dir, 'host.log'),
  })
  // Its persisted state holds every image the edge cached: gone with the host.
  const stop = async () => {
    await stopProcess(proc)
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (const spec of specs)
      await waitForHttp(`${urls.get(spec.name)!}${spec.readyPath}`, {
        timeoutMs: 30_000,
        what: `${spec.name} bench worker (log: ${proc.spec.logFile})`,
        abort: proc.exited,
      })
  } catch (error) {
    await stop()
    throw error
  }
  return {
    url: (name) => urls.get(name) ?? '',
    proc,
    workerdPid: () => {
      const pid = liveProcessesInGroup(proc.pid).find((p) => commandLine(p)?.[0]?.endsWith('workerd'))
      if (pid === undefined) throw new Error(`${label}: no workerd process (log: ${proc.spec.logFile})`)
      return pid
    },
    stop,
  }
}

export interface BenchWorker {
  url: string
  proc: Supervised
  workerdPid: () => number
  stop: () => Promise<void>
}

/** One Worker of the bench (`bench/<entry>`) on its own Miniflare. */
export async function startBenchWorker(
  name: string,
  entry: string,
  vars: Record<string, string> = {},
  readyPath = '/'
): Promise<BenchWorker> {
  const workers = await startBenchWorkers(name, [{ name, entry, vars, readyPath }])
  return { url: workers.url(name), proc: workers.proc, workerdPid: workers.workerdPid, stop: workers.stop }
}
