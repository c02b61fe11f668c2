/** Runs a real backend service process (node backend/<service>/service.ts) for a test. */
import { mkdtempSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ServiceName } from '#shared/services.ts'
import { projectRoot } from '../../local/platform.ts'
import { startProcess, stopProcess, type Supervised } from '../../local/processes.ts'
import { freePort } from '../../local/free-port.ts'
import { waitForHttp } from '../../local/wait.ts'
import { testNatsCredentials } from './nats-credentials.ts'
import { testOriginProof } from './origin-proof.ts'

export interface TestService {
  /** The public port: the service's own routes. */
  url: string
  /** The internal port: /healthz, /readyz, /metrics. */
  internalUrl: string
  proc: Supervised
  /** The service's log lines so far, parsed. */
  logs(): Promise<Array<Record<string, unknown>>>
  stop(): Promise<void>
}

export async function startService(
  service: ServiceName,
  env: Record<string, string>,
  opts: { waitReady?: boolean; entry?: string } = {}
): Promise<TestService> {
  const port = await freePort()
  const internalPort = await freePort()
  const logFile = join(mkdtempSync(join(tmpdir(), `vtta-${service}-`)), 'service.log')
  const proc = startProcess({
    dc: env.DC ?? null,
    service,
    url: `http://127.0.0.1:${port}`,
    command: process.execPath,
    args: [opts.entry ?? join(projectRoot, 'backend', service, 'service.ts')],
    cwd: projectRoot,
    env: {
      PATH: process.env.PATH ?? '',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
      // The service's own NATS user, as the local platform and production give it.
      ...(env.NATS_NKEY_SEED === undefined
        ? { NATS_NKEY_SEED_FILE: testNatsCredentials().seedFile(service) }
        : {}),
      INTERNAL_HTTP_HOST: '127.0.0.1',
      INTERNAL_HTTP_PORT: String(internalPort),
      // The web service requires the edge's proof; tests get the test pair unless they say otherwise.
      ...(service === 'web' ? testOriginProof : {}),
      ...env,
    },
    logFile,
  })
  const url = `http://127.0.0.1:${port}`
  const internalUrl = `http://127.0.0.1:${internalPort}`
  if (opts.waitReady !== false) {
    await waitForHttp(`${internalUrl}/readyz`, {
      timeoutMs: 15_000,
      what: service,
      abort: proc.exited.then(async (how) => `${how}: ${await readFile(logFile, 'utf8')}`),
    })
  }
  return {
    url,
    internalUrl,
    proc,
    async logs() {
      const text = await readFile(logFile, 'utf8')
      return text
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    },
    stop: () => stopProcess(proc),
  }
}
