/**
 * `npm run swarm -- <command>`: operate the local platform.
 *   status               every datacenter's state, as the edge sees it
 *   drain <dc>           stop new traffic to <dc> (operator API, bearer ADMIN_TOKEN)
 *   undrain <dc>         take traffic again
 *   kill <dc>            SIGKILL every process of <dc> (from .local/state.json): a datacenter lost
 *   revive <dc>          start them again (through the supervisor) and wait until ready
 *   pause <dc>           SIGSTOP them: alive but unreachable, a partition
 *   resume <dc>          SIGCONT them
 *   restart <dc> <svc>   graceful restart of one process (SIGTERM; nats: SIGUSR2, lame duck), then ready again
 *   enroll <owner/repo>             the repository may publish releases (audited; registry-commands.ts)
 *   transfer <module> <owner/repo>  the module moves to that enrolled repository (audited)
 * Environment: LOCAL_DIR (default .local), ADMIN_TOKEN (default the one `npm start` generated in
 * <LOCAL_DIR>/secrets/edge.json); for enroll/transfer GITHUB_API_URL, GITHUB_APP_ID,
 * GITHUB_APP_PRIVATE_KEY_FILE (default the local stand-in and App), OPERATOR (who is recorded;
 * default $USER), NATS_NKEY_SEED_FILE (default the local operator's seed).
 */
import { userInfo } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { readRunningState, type StateFile } from './state.ts'
import { ensureLocalGitHubApp } from './github-app.ts'
import { operatorGitHubApp } from './enroll-fixtures.ts'
import { connectOperatorNats } from './operator-nats.ts'
import { enrollRepository, transferModule } from './registry-commands.ts'
import { loadEdgeSecrets } from './edge-secrets.ts'
import { projectRoot } from './platform-specs.ts'
import { errorMessage, fetchFailure } from './error-message.ts'

const usage =
  'usage: npm run swarm -- status | drain <dc> | undrain <dc> | kill <dc> | revive <dc> | pause <dc> | resume <dc> | restart <dc> <service> | enroll <owner/repo> | transfer <module> <owner/repo>'

function fail(message: string): never {
  console.error(`swarm: ${message}`)
  process.exit(1)
}

async function api(url: string, init: RequestInit = {}): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) })
  } catch (error) {
    return fail(`${url}: ${fetchFailure(error)}`)
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } }
  if (!res.ok) fail(`${res.status} ${body.error?.code ?? ''}: ${body.error?.message ?? res.statusText}`)
  return body
}

function signalDatacenter(state: StateFile, dc: string, signal: NodeJS.Signals): void {
  const procs = state.processes.filter((p) => p.dc === dc)
  if (procs.length === 0) fail(`no running process of datacenter ${dc} in state.json`)
  for (const p of procs) {
    try {
      process.kill(-p.pid, signal) // the process group: nothing it spawned survives
    } catch {
      // already gone
    }
    console.log(`${signal} ${dc} ${p.service} (pid ${p.pid})`)
  }
}

interface StatusJson {
  datacenters: Array<{
    id: string
    name: string
    state: string
    lastProbe: { at: number; latencyMs?: number; error?: string } | null
  }>
}

const [command, dc, service] = process.argv.slice(2)
// Arguments first: the usage needs no running platform.
const needsDc = ['drain', 'undrain', 'kill', 'revive', 'pause', 'resume', 'enroll']
const needsTwo = ['restart', 'transfer']
if (
  !command ||
  ![...needsDc, ...needsTwo, 'status'].includes(command) ||
  (needsDc.includes(command) && !dc) ||
  (needsTwo.includes(command) && !service)
)
  fail(usage)

const { statePath, state } = (() => {
  try {
    return readRunningState()
  } catch (error) {
    return fail(errorMessage(error))
  }
})()
let token = process.env.ADMIN_TOKEN ?? ''
if (!token) {
  try {
    const localDir = resolve(process.env.LOCAL_DIR ?? join(projectRoot, '.local'))
    token = loadEdgeSecrets(localDir, { create: false }).secrets.ADMIN_TOKEN
  } catch (error) {
    fail(errorMessage(error))
  }
}
/** enroll / transfer: as the GitHub App (the local one by default), on the operator's NATS connection. */
async function registryCommand(run: (ctx: Parameters<typeof enrollRepository>[0]) => Promise<unknown>) {
  const gitHubUrl =
    process.env.GITHUB_API_URL ?? state.processes.find((p) => p.service === 'github-stand-in')?.url
  if (!gitHubUrl) fail('GITHUB_API_URL is not set and no github-stand-in runs')
  const nc = await connectOperatorNats(state, dirname(statePath)).catch((error: unknown) =>
    fail(errorMessage(error))
  )
  try {
    const by = process.env.OPERATOR ?? userInfo().username
    await run({ nc, github: operatorGitHubApp(gitHubUrl, ensureLocalGitHubApp(dirname(statePath))), by })
  } catch (error) {
    fail(errorMessage(error))
  } finally {
    await nc.close()
  }
}

switch (command) {
  case 'status': {
    const doc = (await api(`${state.edge}/status.json`)) as StatusJson
    for (const d of doc.datacenters) {
      const probe = d.lastProbe
        ? `${d.lastProbe.latencyMs ?? '-'} ms${d.lastProbe.error ? ` (${d.lastProbe.error})` : ''}`
        : '-'
      console.log(`${d.id.padEnd(5)} ${d.state.padEnd(9)} ${probe}`)
    }
    break
  }
  case 'drain':
  case 'undrain': {
    const body = await api(`${state.edge}/admin/datacenters/${dc}/${command}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    })
    console.log(JSON.stringify(body))
    break
  }
  case 'kill':
    signalDatacenter(state, dc!, 'SIGKILL')
    break
  case 'pause':
    signalDatacenter(state, dc!, 'SIGSTOP')
    break
  case 'resume':
    signalDatacenter(state, dc!, 'SIGCONT')
    break
  case 'revive': {
    const body = (await api(`${state.control}/datacenters/${dc}/revive`, { method: 'POST' })) as {
      started: string[]
    }
    console.log(`revived ${dc}: ${body.started.join(', ') || 'nothing was down'}`)
    break
  }
  case 'restart': {
    const body = (await api(`${state.control}/datacenters/${dc}/restart/${service}`, { method: 'POST' })) as {
      stoppedMs: number
      startedMs: number
    }
    console.log(
      `restarted ${dc} ${service}: stopped in ${body.stoppedMs} ms, ready again in ${body.startedMs} ms`
    )
    break
  }
  case 'enroll':
    await registryCommand((ctx) => enrollRepository(ctx, dc!))
    break
  case 'transfer':
    await registryCommand((ctx) => transferModule(ctx, dc!, service!))
    break
  default:
    fail(usage)
}
