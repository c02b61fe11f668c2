/**
 * Supervised child processes. Each runs in its own process group, so stopping it also stops what it
 * spawned (wrangler starts workerd), and its output goes to a bounded log file.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { BoundedLogFile } from './log-file.ts'
import { liveProcessesInGroup } from './process-table.ts'

export interface ProcessSpec {
  /** Datacenter id, or null for the edge. */
  dc: string | null
  service: string
  url: string
  /** A backend service's internal listener (/healthz, /readyz, /metrics), apart from its public url. */
  internalUrl?: string
  command: string
  args: string[]
  env: Record<string, string>
  logFile: string
  /** Cap of the log file (and of its one rotated predecessor); default LOG_FILE_MAX_BYTES. */
  logMaxBytes?: number
  cwd?: string
}

export interface Supervised {
  spec: ProcessSpec
  pid: number
  child: ChildProcess
  /** Resolves with a description of how the process ended. */
  exited: Promise<string>
}

export const LOG_FILE_MAX_BYTES = 5 * 1024 * 1024

export function startProcess(spec: ProcessSpec): Supervised {
  const log = new BoundedLogFile(spec.logFile, spec.logMaxBytes ?? LOG_FILE_MAX_BYTES)
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout.on('data', (chunk: Buffer) => log.write(chunk))
  child.stderr.on('data', (chunk: Buffer) => log.write(chunk))
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`failed to start: ${error.message}`))
    child.once('exit', (code, signal) => {
      resolve(signal ? `killed by ${signal}` : `exited with code ${code}`)
    })
  })
  // Output can still arrive after 'exit' (until the pipes close): close the log on 'close'.
  child.once('close', () => log.close())
  if (child.pid === undefined) throw new Error(`${spec.service}: could not start ${spec.command}`)
  return { spec, pid: child.pid, child, exited }
}

/** SIGKILL to a supervised process group, and wait until it is gone. */
export async function killProcess(proc: Supervised): Promise<void> {
  try {
    process.kill(-proc.pid, 'SIGKILL')
  } catch {
    // already gone
  }
  await proc.exited
}

/** SIGTERM to the process group; SIGKILL what is left after `graceMs`. */
export async function stopProcess(proc: Supervised, graceMs = 10_000): Promise<void> {
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid, signal)
    } catch {
      // already gone
    }
  }
  signalGroup('SIGTERM')
  const timedOut = await Promise.race([proc.exited.then(() => false), sleep(graceMs, true, { ref: false })])
  // After a timeout, or when grandchildren (workerd) outlive the group leader, nothing of the group stays.
  signalGroup('SIGKILL')
  if (timedOut) await proc.exited
  // A killed process lingers for a moment; report stopped only when the whole group is gone.
  for (let i = 0; i < 100 && liveProcessesInGroup(proc.pid).length > 0; i++) await sleep(20)
}
