/** Runs the programs the swarm is made of (ip, nsenter, docker, …), failing with what they printed. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process'

export class CommandError extends Error {}

export function run(
  command: string,
  args: string[],
  opts: SpawnSyncOptions & { input?: string | Buffer } = {}
): string {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts })
  if (result.error) throw new CommandError(`${command}: ${result.error.message}`)
  if (result.status !== 0) {
    const said = `${String(result.stderr ?? '')}${String(result.stdout ?? '')}`.trim().split('\n').slice(-5)
    throw new CommandError(`\`${command} ${args.join(' ')}\` exited ${result.status}: ${said.join(' | ')}`)
  }
  return String(result.stdout ?? '')
}

/** Like run, but a failure is an answer, not an error (for probes and best-effort clean-up). */
export function attempt(command: string, args: string[], opts: SpawnSyncOptions = {}): boolean {
  return spawnSync(command, args, { stdio: 'ignore', ...opts }).status === 0
}

/** The docker CLI against one engine. */
export const docker = (
  dockerHost: string,
  args: string[],
  opts: SpawnSyncOptions & { input?: string } = {}
) => run('docker', args, { ...opts, env: { ...process.env, ...opts.env, DOCKER_HOST: dockerHost } })

/** The docker CLI against one engine, as a question: did it succeed? */
export const dockerSucceeds = (dockerHost: string, args: string[]) =>
  attempt('docker', args, { env: { ...process.env, DOCKER_HOST: dockerHost } })
