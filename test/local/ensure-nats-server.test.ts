import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { missingMessage, provisioning } from '../../local/ensure-nats-server.ts'
import { projectRoot } from '../../local/platform.ts'

describe('nats-server provisioning', () => {
  it.each([
    [{ hasNatsServer: true, isRoot: false, hasApt: false }, { action: 'none' }],
    [{ hasNatsServer: false, isRoot: true, hasApt: true }, { action: 'install' }],
    [
      { hasNatsServer: false, isRoot: false, hasApt: true },
      { action: 'fail', message: missingMessage },
    ],
    [
      { hasNatsServer: false, isRoot: true, hasApt: false },
      { action: 'fail', message: missingMessage },
    ],
  ])('%o -> %o', (machine, plan) => {
    expect(provisioning(machine)).toEqual(plan)
  })

  it('says in one line exactly what to install', () => {
    expect(missingMessage).not.toContain('\n')
    expect(missingMessage).toContain('apt-get install -y nats-server')
  })

  it('passes quietly where nats-server is on the PATH', () => {
    const run = spawnSync(process.execPath, [join(projectRoot, 'local', 'ensure-nats-server.ts')], {
      encoding: 'utf8',
    })
    expect(run.status).toBe(0)
    expect(run.stderr).toBe('')
  })
})
