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
 * Environment: LOCAL_DIR (default .local), ADMIN_TOKEN (default the local one).
 */
import { readRunningState, type StateFile } from './state.ts'
import { localEnv } from './local-env.ts'

const usage =
  'usage: npm run swarm -- status | drain <dc> | undrain <dc> | kill <dc> | revive <dc> | pause <dc> | resume <dc>'

function fail(message: string): never {
  console.error(`swarm: ${message}`)
  process.exit(1)
}

function loadState(): StateFile {
  try {
    return readRunningState().state
  } catch (error) {
    return fail((error as Error).message)
  }
}

async function api(url: string, init: RequestInit = {}): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(60_000) })
  } catch (error) {
    return fail(`${url}: ${(error as Error).cause ?? error}`)
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
const state = loadState()
const token = process.env.ADMIN_TOKEN ?? localEnv({}, '').values.ADMIN_TOKEN
const needsDc = ['drain', 'undrain', 'kill', 'revive', 'pause', 'resume']
if (!command || (needsDc.includes(command) && !dc) || (command === 'restart' && !service)) fail(usage)

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
  default:
    fail(usage)
}
