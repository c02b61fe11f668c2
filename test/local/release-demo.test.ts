/**
 * `npm run release:demo -- <module>` names what it does not know: an unknown module is refused
 * before anything is sent, with the known ones listed and a non-zero exit.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { fixtureNames } from '../../local/stand-ins/github/index.ts'
import { projectRoot } from '../../local/platform-specs.ts'

/** Runs the script against an empty LOCAL_DIR (no platform): its exit code and stderr. */
async function releaseDemo(...args: string[]): Promise<{ code: number; stderr: string }> {
  const localDir = mkdtempSync(join(tmpdir(), 'vtta-release-demo-'))
  try {
    const { stderr } = await promisify(execFile)(
      process.execPath,
      [join(projectRoot, 'local', 'release-demo.ts'), ...args],
      { cwd: projectRoot, env: { ...process.env, LOCAL_DIR: localDir } }
    )
    return { code: 0, stderr }
  } catch (error) {
    // execFile rejects with the exit code and the output on the error.
    return z.object({ code: z.number(), stderr: z.string() }).parse(error)
  }
}

describe('release:demo', () => {
  it('refuses an unknown module by name, listing the known ones, with exit code 1', async () => {
    const { code, stderr } = await releaseDemo('nope')
    expect(code).toBe(1)
    expect(stderr).toContain('unknown module "nope"')
    for (const name of fixtureNames) expect(stderr).toContain(name)
  })

  it('asks which module when none is given', async () => {
    const { code, stderr } = await releaseDemo()
    expect(code).toBe(1)
    expect(stderr).toContain('which module?')
  })

  it('goes past the name check for a known module (then finds no running platform)', async () => {
    const { code, stderr } = await releaseDemo('item-piles')
    expect(code).toBe(1)
    expect(stderr).not.toContain('unknown module')
    expect(stderr).toContain('is `npm start` running?')
  })
})
