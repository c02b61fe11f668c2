/**
 * The runbook is what the swarm drills run: docs/operations.md marks each command block a drill uses
 * with `<!-- runbook: <name> -->` on the line before its ```sh fence, and this module runs that block,
 * as written, with bash (`set -euo pipefail`, so an unset variable or a failed command stops it). The
 * block's variables come from the caller; DOCKER_HOST names the manager it runs against. The one local
 * difference: `-c stack.yml` also takes local/docker-swarm/stack.local.yml (stack.local.yml says why).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { run } from './command.ts'
import { projectRoot } from '../platform-specs.ts'

export const runbookFile = join(projectRoot, 'docs', 'operations.md')

export function runbookBlocks(markdown = readFileSync(runbookFile, 'utf8')): Map<string, string> {
  const blocks = new Map<string, string>()
  const pattern = /<!-- runbook: ([a-z0-9-]+) -->\n+```(?:sh|bash)\n([\s\S]*?)```/g
  for (const [, name, body] of markdown.matchAll(pattern)) {
    if (blocks.has(name!)) throw new Error(`docs/operations.md: two runbook blocks named ${name}`)
    blocks.set(name!, body!)
  }
  return blocks
}

export function runbookBlock(name: string): string {
  const block = runbookBlocks().get(name)
  if (block === undefined) throw new Error(`docs/operations.md has no block marked <!-- runbook: ${name} -->`)
  return block
}

/** The local deploy adds the override file to every `docker stack deploy -c stack.yml`. */
export const withLocalOverride = (block: string) =>
  block.replaceAll('-c stack.yml', '-c stack.yml -c stack.local.yml')

export interface RunbookContext {
  /** The manager (or node) the commands talk to. */
  dockerHost: string
  /** The operator's checkout: stack.yml, deploy/ and stack.local.yml (local/docker-swarm/deploy-dir.ts). */
  cwd: string
  env?: Record<string, string>
}

export function runRunbook(name: string, ctx: RunbookContext, env: Record<string, string> = {}): string {
  const script = `set -euo pipefail\n${withLocalOverride(runbookBlock(name))}`
  return run('bash', ['-c', script], {
    cwd: ctx.cwd,
    env: { ...process.env, ...ctx.env, ...env, DOCKER_HOST: ctx.dockerHost },
  })
}
