/**
 * `npm run swarm -- <command>` without the platform: the usage names every command.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { projectRoot } from '../../local/platform-specs.ts'

/** Runs `local/swarm.ts` with these arguments and LOCAL_DIR: its exit code, stdout and stderr. */
async function swarm(
  localDir: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [join(projectRoot, 'local', 'swarm.ts'), ...args],
      { cwd: projectRoot, env: { ...process.env, LOCAL_DIR: localDir } }
    )
    return { code: 0, stdout, stderr }
  } catch (error) {
    // execFile rejects with the exit code and the output on the error.
    return z.object({ code: z.number(), stdout: z.string(), stderr: z.string() }).parse(error)
  }
}

describe('swarm usage', () => {
  const noPlatform = mkdtempSync(join(tmpdir(), 'vtta-swarm-'))

  it.each([[], ['nope'], ['kill'], ['restart', 'fra']])(
    'names every command, restart <dc> <service> included, for %j',
    async (...args) => {
      const { code, stderr } = await swarm(noPlatform, ...args)
      expect(code).toBe(1)
      for (const command of [
        'status',
        'drain <dc>',
        'undrain <dc>',
        'kill <dc>',
        'revive <dc>',
        'pause <dc>',
        'resume <dc>',
        'restart <dc> <service>',
        'enroll <owner/repo>',
        'transfer <module> <owner/repo>',
      ])
        expect(stderr).toContain(command)
    }
  )
})
