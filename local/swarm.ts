/**
 * `npm run swarm -- <command>`: operate the local platform.
 *   status               every datacenter as the edge sees it (state, last probe) and as it answers now
 *   drain <dc>           stop new traffic to <dc> (operator API, bearer ADMIN_TOKEN)
 *   undrain <dc>         take traffic again
 *   kill <dc>            SIGKILL every process of <dc> (from .local/state.json): a datacenter lost
 *   revive <dc>          start them again (through the supervisor) and wait until ready
 *   pause <dc>           SIGSTOP them: alive but unreachable, a partition
 *   resume <dc>          SIGCONT them
 *   restart <dc> <svc>   graceful restart of one process (SIGTERM; nats: SIGUSR2, lame duck), then ready again
 *   enroll <owner/repo>             the repository may publish releases (audited; registry-commands.ts)
 *   transfer <module> <owner/repo>  the module moves to that enrolled repository (audited)
 *   partition <dc|region|edge location> [from <...>]  cut WAN links (WAN=1; without from: from every
 *                        other datacenter); heal: every link again (local/wan/command.ts)
 * Environment: LOCAL_DIR (default .local), ADMIN_TOKEN, and for status ORIGIN_CLIENT_ID and
 * ORIGIN_CLIENT_SECRET (default the ones `npm start` generated in <LOCAL_DIR>/secrets/edge.json); for enroll/transfer GITHUB_API_URL, GITHUB_APP_ID,
 * GITHUB_APP_PRIVATE_KEY_FILE (default the local stand-in and App), OPERATOR (who is recorded;
 * default $USER), NATS_NKEY_SEED_FILE (default the local operator's seed).
 */
import { userInfo } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { z } from 'zod'
import { readRunningState, type StateFile } from './state.ts'
import { ensureLocalGitHubApp } from './github-app.ts'
import { operatorGitHubApp } from './enroll-fixtures.ts'
import { connectOperatorNats } from './operator-nats.ts'
import { enrollRepository, transferModule } from './registry-commands.ts'
import { loadEdgeSecrets } from './edge-secrets.ts'
import { projectRoot } from './platform-specs.ts'
import { errorMessage, fetchFailure } from '#shared/error-message.ts'
import { healthNow } from './health-now.ts'
import { wanCommand, wanUsage } from './wan/command.ts'

const usage =
  'usage: npm run swarm -- status | drain <dc> | undrain <dc> | kill <dc> | revive <dc> | pause <dc> | resume <dc> | restart <dc> <service> | enroll <owner/repo> | transfer <module> <owner/repo> | ' +
  wanUsage

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

/** The part of the edge's /status.json this command shows. */
const statusJsonSchema = z.object({
  datacenters: z.array(
    z.object({
      id: z.string(),
      state: z.string(),
      lastProbe: z
        .object({ at: z.number(), latencyMs: z.number().optional(), error: z.string().optional() })
        .nullable(),
    })
  ),
})

/**
 * Every datacenter as the edge sees it (its state and last probe, which steer traffic) and as it
 * answers now (GET <web>/health with the edge's proof): the edge's view lags on purpose.
 */
async function status(state: StateFile, originProof: Record<string, string>): Promise<string[]> {
  const doc = statusJsonSchema.parse(await api(`${state.edge}/status.json`))
  const now = Date.now()
  const rows = await Promise.all(
    doc.datacenters.map(async (d) => {
      const last = d.lastProbe
      const edgeProbe = last
        ? `${last.error ?? `${last.latencyMs ?? '-'} ms`}, ${((now - last.at) / 1000).toFixed(1)} s ago`
        : 'not probed yet'
      const web = state.processes.find((p) => p.dc === d.id && p.service === 'web')
      const health = web
        ? await healthNow(web.url, d.id, originProof)
        : { status: 'unreachable' as const, latencyMs: 0, detail: 'no web service in state.json' }
      const answer = `${health.status}, ${health.detail ?? `${health.latencyMs} ms`}`
      const answers = health.status === 'ok' || health.status === 'degraded'
      const steered = d.state === 'healthy' || d.state === 'degraded'
      const lagging = d.state !== 'drained' && answers !== steered
      return { cells: [d.id, d.state, edgeProbe, answer], lagging }
    })
  )
  const header = ['dc', 'edge', "edge's last probe", 'now (GET /health)']
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r.cells[c]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c < cells.length - 1 ? cell.padEnd(widths[c]!) : cell))
      .join('  ')
      .trimEnd()
  const lines = [line(header), ...rows.map((r) => line(r.cells))]
  if (rows.some((r) => r.lagging))
    lines.push(
      '',
      "The edge's view lags on purpose: a datacenter is down after DOWN_AFTER failed probes and healthy",
      'again after UP_AFTER good ones, one every PROBE_INTERVAL_MS; until then it steers by the old state.'
    )
  return lines
}

const [command, dc, service] = process.argv.slice(2)
// Arguments first: the usage needs no running platform.
const needsDc = ['drain', 'undrain', 'kill', 'revive', 'pause', 'resume', 'enroll', 'partition']
const needsTwo = ['restart', 'transfer']
if (
  !command ||
  ![...needsDc, ...needsTwo, 'status', 'heal'].includes(command) ||
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
const localDir = resolve(process.env.LOCAL_DIR ?? join(projectRoot, '.local'))
/** An edge credential: from the environment, else the one `npm start` generated. */
function edgeSecret(name: 'ADMIN_TOKEN' | 'ORIGIN_CLIENT_ID' | 'ORIGIN_CLIENT_SECRET'): string {
  const given = process.env[name]
  if (given) return given
  try {
    return loadEdgeSecrets(localDir, { create: false }).secrets[name]
  } catch (error) {
    return fail(errorMessage(error))
  }
}
const token = edgeSecret('ADMIN_TOKEN')
/** What the edge shows the datacenters' web services (Cloudflare Access service token headers). */
const originProof = () => ({
  'cf-access-client-id': edgeSecret('ORIGIN_CLIENT_ID'),
  'cf-access-client-secret': edgeSecret('ORIGIN_CLIENT_SECRET'),
})

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
  case 'status':
    console.log((await status(state, originProof())).join('\n'))
    break
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
  case 'partition':
  case 'heal':
    try {
      console.log((await wanCommand(state, localDir, command, process.argv.slice(3))).join('\n'))
    } catch (error) {
      fail(errorMessage(error))
    }
    break
  default:
    fail(usage)
}
