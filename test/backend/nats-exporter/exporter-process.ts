/** Runs a real nats-exporter process (node backend/nats-exporter/service.ts) for a test, and reads its /metrics. */
import { mkdtempSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectRoot } from '../../../local/platform-specs.ts'
import { startProcess, stopProcess, type Supervised } from '../../../local/processes.ts'
import { freePort } from '../../../local/free-port.ts'
import { waitForHttp } from '../../../local/wait.ts'
import { testNatsCredentials } from '../../support/nats-credentials.ts'

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface TestExporter {
  url: string
  proc: Supervised
  /** Every sample of /metrics. */
  scrape(): Promise<Sample[]>
  /** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
  value(name: string, labels?: Record<string, string>): Promise<number | undefined>
  log(): Promise<string>
  stop(): Promise<void>
}

/** Prometheus text format, as far as prom-client writes it (no timestamps, no escaped quotes in our labels). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="([^"]*)"/g)) labels[l[1]!] = l[2]!
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

export async function startExporter(
  env: Record<string, string>,
  opts: { waitReady?: boolean } = {}
): Promise<TestExporter> {
  const port = await freePort()
  const logFile = join(mkdtempSync(join(tmpdir(), 'vtta-nats-exporter-')), 'exporter.log')
  const proc = startProcess({
    dc: env.DC ?? null,
    service: 'nats-exporter',
    url: `http://127.0.0.1:${port}`,
    command: process.execPath,
    args: [join(projectRoot, 'backend', 'nats-exporter', 'service.ts')],
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH ?? '',
      INTERNAL_HTTP_HOST: '127.0.0.1',
      INTERNAL_HTTP_PORT: String(port),
      NATS_NKEY_SEED_FILE: testNatsCredentials().seedFile('nats-exporter'),
      NATS_REQUEST_TIMEOUT_MS: '1000',
      ...env,
    },
    logFile,
  })
  const url = `http://127.0.0.1:${port}`
  if (opts.waitReady !== false)
    await waitForHttp(`${url}/readyz`, {
      timeoutMs: 15_000,
      what: 'nats-exporter',
      abort: proc.exited.then(async (how) => `${how}: ${await readFile(logFile, 'utf8')}`),
    })
  const scrape = async () => parseMetrics(await (await fetch(`${url}/metrics`)).text())
  return {
    url,
    proc,
    scrape,
    async value(name, labels = {}) {
      const found = (await scrape()).filter(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
      )
      if (found.length > 1)
        throw new Error(`${name}: ${found.length} samples match ${JSON.stringify(labels)}`)
      return found[0]?.value
    },
    log: () => readFile(logFile, 'utf8'),
    stop: () => stopProcess(proc),
  }
}
