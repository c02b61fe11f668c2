/** Runs a benchmark Worker under `wrangler dev` (real workerd), with a config of its own. */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectRoot } from '../local/platform-specs.ts'
import { startProcess, stopProcess, type Supervised } from '../local/processes.ts'
import { freePort } from '../local/free-port.ts'
import { waitForHttp } from '../local/wait.ts'

export interface BenchWorker {
  url: string
  proc: Supervised
  stop(): Promise<void>
}

export async function startBenchWorker(
  name: string,
  entry: string,
  vars: Record<string, string> = {},
  readyPath = '/'
): Promise<BenchWorker> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), `vtta-bench-${name}-`))
  // Its own config: without one wrangler would find the project's (and its Durable Objects).
  const config = join(dir, 'wrangler.toml')
  const varLines = Object.entries(vars).map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
  writeFileSync(
    config,
    [
      `name = "${name}"`,
      `main = "${join(projectRoot, 'bench', entry)}"`,
      'compatibility_date = "2026-11-01"',
      ...(varLines.length ? ['[vars]', ...varLines] : []),
      '',
    ].join('\n')
  )
  const url = `http://127.0.0.1:${port}`
  const proc = startProcess({
    dc: null,
    service: name,
    url,
    command: process.execPath,
    args: [
      join(projectRoot, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
      'dev',
      '--config',
      config,
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(await freePort()),
      '--persist-to',
      dir,
      '--show-interactive-dev-session=false',
    ],
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      // As for the local edge (local/platform-specs.ts): no per-request log line and no debug log
      // file from wrangler, so a floor measured here pays what the edge's paths pay, no more.
      WRANGLER_LOG: 'warn',
      WRANGLER_WRITE_LOGS: 'false',
    },
    logFile: join(dir, 'wrangler.log'),
  })
  await waitForHttp(`${url}${readyPath}`, {
    timeoutMs: 30_000,
    what: `${name} bench worker`,
    abort: proc.exited,
  })
  return { url, proc, stop: () => stopProcess(proc) }
}
