/** Runs `npm start`'s supervisor (local/start.ts) as a child process, as a user would, for end-to-end tests. */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { z } from 'zod'
import { projectRoot } from '../../local/platform.ts'
import { commandLine, liveProcessesInGroup } from '../../local/process-table.ts'

export interface Supervisor {
  child: ChildProcess
  output(): string
  exited: Promise<number | null>
  /** Resolves true once the supervisor printed that the platform is ready, false if it exited first. */
  ready: Promise<boolean>
}

export function startSupervisor(env: Record<string, string>): Supervisor {
  let output = ''
  const child = spawn(process.execPath, [join(projectRoot, 'local', 'start.ts')], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const ready = Promise.race([
    new Promise<boolean>((resolve) => {
      const check = () => (output.includes('ready in') ? resolve(true) : setTimeout(check, 100))
      check()
    }),
    exited.then(() => false),
  ])
  return { child, output: () => output, exited, ready }
}

/** A script of local/ (`npm run swarm`, `npm run release:demo`) against the platform in `localDir`; its stdout. */
async function runLocalScript(script: string, localDir: string, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(projectRoot, 'local', script), ...args],
    {
      cwd: projectRoot,
      env: { ...process.env, LOCAL_DIR: localDir },
    }
  )
  return stdout
}

/**
 * `npm run swarm -- <args>` against LOCAL_DIR `localDir` (with `env` added), whether it succeeds or not: its
 * exit code, stdout and stderr, for tests of the command itself.
 */
export async function swarmOutcome(
  localDir: string,
  args: string[],
  env: Record<string, string> = {}
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [join(projectRoot, 'local', 'swarm.ts'), ...args],
      {
        cwd: projectRoot,
        env: { ...process.env, LOCAL_DIR: localDir, ...env },
      }
    )
    return { code: 0, stdout, stderr }
  } catch (error) {
    // execFile rejects with the exit code and the output on the error.
    return z.object({ code: z.number(), stdout: z.string(), stderr: z.string() }).parse(error)
  }
}

/** `npm run swarm -- <args>` against the platform in `localDir`. */
export const swarm = (localDir: string, ...args: string[]) => runLocalScript('swarm.ts', localDir, args)

/** `npm run release:demo -- <args>` against the platform in `localDir`. */
export const releaseDemo = (localDir: string, ...args: string[]) =>
  runLocalScript('release-demo.ts', localDir, args)

export const alive = (pid: number) => liveProcessesInGroup(pid).includes(pid)

/** Every live process whose command line mentions `needle` (the LOCAL_DIR is in every nats and wrangler argv). */
export const processesMentioning = (needle: string) =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => commandLine(Number(pid))?.some((arg) => arg.includes(needle)) ?? false)
