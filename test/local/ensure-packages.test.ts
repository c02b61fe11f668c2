import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { missingMessage, missingOf, provisioning } from '../../local/ensure-packages.ts'
import { projectRoot } from '../../local/platform.ts'

describe('system package provisioning', () => {
  it.each([
    [{ missing: [], isRoot: false, hasApt: false }, { action: 'none' }],
    [
      { missing: ['nats-server'], isRoot: true, hasApt: true },
      { action: 'install', packages: ['nats-server'] },
    ],
    [
      { missing: ['nats-server', 'chromium'], isRoot: true, hasApt: true },
      { action: 'install', packages: ['nats-server', 'chromium'] },
    ],
    [
      { missing: ['prometheus', 'prometheus-alertmanager'], isRoot: true, hasApt: true },
      { action: 'install', packages: ['prometheus', 'prometheus-alertmanager'] },
    ],
    [
      { missing: ['nats-server'], isRoot: false, hasApt: true },
      { action: 'fail', message: missingMessage(['nats-server']) },
    ],
    [
      { missing: ['chromium'], isRoot: true, hasApt: false },
      { action: 'fail', message: missingMessage(['chromium']) },
    ],
  ] as const)('%o -> %o', (machine, plan) => {
    expect(provisioning({ ...machine, missing: [...machine.missing] })).toEqual(plan)
  })

  it('says in one line exactly what to install', () => {
    const message = missingMessage(['nats-server'])
    expect(message).not.toContain('\n')
    expect(message).toContain('sudo apt-get install -y nats-server')
  })

  it('counts a requirement as missing when any one of its commands is', () => {
    // Debian ships promtool with the server; a system with only the server cannot run the rule tests.
    const found = (command: string) =>
      ['nats-server', 'prometheus', 'prometheus-alertmanager', 'amtool'].includes(command)
    expect(missingOf(['nats-server', 'prometheus', 'prometheus-alertmanager'], found)).toEqual(['prometheus'])
    expect(missingOf(['prometheus-alertmanager'], found)).toEqual([])
  })

  it('passes quietly where nats-server is on the PATH', () => {
    const run = spawnSync(
      process.execPath,
      [join(projectRoot, 'local', 'ensure-packages.ts'), 'nats-server'],
      {
        encoding: 'utf8',
      }
    )
    expect(run.status).toBe(0)
    expect(run.stderr).toBe('')
  })

  it('passes quietly where Prometheus and Alertmanager, with promtool and amtool, and the node exporter are on the PATH', () => {
    const run = spawnSync(
      process.execPath,
      [
        join(projectRoot, 'local', 'ensure-packages.ts'),
        'prometheus',
        'prometheus-alertmanager',
        'prometheus-node-exporter',
      ],
      { encoding: 'utf8' }
    )
    expect(run.status).toBe(0)
    expect(run.stderr).toBe('')
  })

  it('refuses a requirement it does not know', () => {
    const run = spawnSync(process.execPath, [join(projectRoot, 'local', 'ensure-packages.ts'), 'nginx'], {
      encoding: 'utf8',
    })
    expect(run.status).not.toBe(0)
    expect(run.stderr).toContain('unknown requirement: nginx')
  })
})
