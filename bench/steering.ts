/**
 * Steering decision cost inside workerd (the bench Worker under `wrangler dev`): 8 datacenters, a
 * health filter, one ranking per decision. workerd's clock only moves on I/O, so the cost is
 * measured from outside: a request making n decisions minus a request making none. Goal: < 20 µs.
 */
import { join } from 'node:path'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { projectRoot } from '../local/platform-specs.ts'
import { startProcess, stopProcess } from '../local/processes.ts'
import { freePort } from '../local/free-port.ts'
import { waitForHttp } from '../local/wait.ts'
import { printTable } from './table.ts'

const DECISIONS = 200_000

export async function benchSteering(): Promise<void> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'vtta-bench-steering-'))
  // Its own config: without one wrangler would find the project's (and its Durable Objects).
  const config = join(dir, 'wrangler.toml')
  writeFileSync(
    config,
    `name = "steering-bench"\nmain = "${join(projectRoot, 'bench', 'steering-worker.ts')}"\ncompatibility_date = "2026-11-01"\n`
  )
  const worker = startProcess({
    dc: null,
    service: 'steering-bench',
    url: `http://127.0.0.1:${port}`,
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
    },
    logFile: join(dir, 'wrangler.log'),
  })
  try {
    await waitForHttp(`http://127.0.0.1:${port}/?n=0`, {
      timeoutMs: 30_000,
      what: 'steering bench worker',
      abort: worker.exited,
    })
    const time = async (n: number) => {
      const t0 = performance.now()
      await (await fetch(`http://127.0.0.1:${port}/?n=${n}`)).text()
      return performance.now() - t0
    }
    await time(DECISIONS) // warm-up: JIT
    const rounds: number[] = []
    for (let i = 0; i < 7; i++) {
      const empty = await time(0)
      const full = await time(DECISIONS)
      rounds.push(((full - empty) * 1000) / DECISIONS)
    }
    rounds.sort((a, b) => a - b)
    printTable(
      'steering decision inside workerd (8 datacenters, health filter)',
      ['measure', 'value'],
      [
        ['decisions per round', DECISIONS],
        ['µs per decision, median of 7', rounds[3]!],
        ['µs per decision, best / worst', `${rounds[0]!.toFixed(2)} / ${rounds[6]!.toFixed(2)}`],
        ['goal', 'under 20 µs'],
      ]
    )
  } finally {
    await stopProcess(worker)
  }
}
