/** `.local/state.json` (contract): every process the supervisor runs, so scripts can act on a datacenter by pid. */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Supervised } from './processes.ts'
import { projectRoot } from './platform-specs.ts'

export interface StateFile {
  /** The edge's URL. */
  edge: string
  /** The supervisor's control API (revive). */
  control: string
  /** `internalUrl`: a backend service's /healthz, /readyz and /metrics (not on its public url). */
  processes: Array<{ dc: string | null; service: string; pid: number; url: string; internalUrl?: string }>
}

export function writeState(
  localDir: string,
  urls: { edge: string; control: string },
  processes: readonly Supervised[]
): void {
  const state: StateFile = {
    ...urls,
    processes: processes.map((p) => ({
      dc: p.spec.dc,
      service: p.spec.service,
      pid: p.pid,
      url: p.spec.url,
      ...(p.spec.internalUrl ? { internalUrl: p.spec.internalUrl } : {}),
    })),
  }
  const path = join(localDir, 'state.json')
  // Write-then-rename so a reader never sees half a file.
  writeFileSync(`${path}.tmp`, JSON.stringify(state, null, 2) + '\n')
  renameSync(`${path}.tmp`, path)
}

export function readState(localDir: string): StateFile {
  return JSON.parse(readFileSync(join(localDir, 'state.json'), 'utf8')) as StateFile
}

/** The running platform's state for the scripts that act on it (LOCAL_DIR, default `.local`). */
export function readRunningState(env: NodeJS.ProcessEnv = process.env): {
  statePath: string
  state: StateFile
} {
  const statePath = join(resolve(env.LOCAL_DIR ?? join(projectRoot, '.local')), 'state.json')
  try {
    return { statePath, state: JSON.parse(readFileSync(statePath, 'utf8')) as StateFile }
  } catch {
    throw new Error(`no ${statePath}: is \`npm start\` running?`)
  }
}
