/**
 * The release service is a GitHub App: without its id and private key (or with malformed ones) it
 * stops at start-up with a message naming the variable, before it connects to anything.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateAppPrivateKey } from '../../../local/stand-ins/github/index.ts'
import { testNatsCredentials } from '../../support/nats-credentials.ts'

const service = join(import.meta.dirname, '..', '..', '..', 'backend', 'releases', 'service.ts')
const base = {
  PATH: process.env.PATH ?? '',
  DC: 'fra',
  // Nothing listens there: a service that got past its configuration would hang, not exit.
  NATS_URL: 'nats://127.0.0.1:1',
  PUBLIC_BASE_URL: 'http://127.0.0.1:8787',
  NATS_NKEY_SEED_FILE: testNatsCredentials().seedFile('releases'),
}
const key = generateAppPrivateKey()

function start(env: Record<string, string>) {
  const run = spawnSync(process.execPath, [service], {
    env: { ...base, ...env },
    timeout: 20_000,
    encoding: 'utf8',
  })
  return { status: run.status, output: `${run.stdout}${run.stderr}` }
}

describe('the release service refuses to start without a valid GitHub App', () => {
  it.each([
    ['GITHUB_APP_ID missing', { GITHUB_APP_PRIVATE_KEY: key }, /GITHUB_APP_ID is required/],
    [
      'GITHUB_APP_ID not a number',
      { GITHUB_APP_ID: 'my-app', GITHUB_APP_PRIVATE_KEY: key },
      /GITHUB_APP_ID=\\"my-app\\": must be the GitHub App id/,
    ],
    ['the private key missing', { GITHUB_APP_ID: '12' }, /GITHUB_APP_PRIVATE_KEY is required/],
    [
      'the private key not a PEM key',
      { GITHUB_APP_ID: '12', GITHUB_APP_PRIVATE_KEY: 'not a key' },
      /GITHUB_APP_PRIVATE_KEY: must be the GitHub App RSA private key in PEM/,
    ],
    [
      'the key file unreadable',
      { GITHUB_APP_ID: '12', GITHUB_APP_PRIVATE_KEY_FILE: '/nonexistent/key.pem' },
      /GITHUB_APP_PRIVATE_KEY_FILE: cannot read/,
    ],
  ])('%s', (_case, env, message) => {
    const { status, output } = start(env)
    expect(status).not.toBe(0)
    expect(output).toMatch(message)
  })

  it('takes the key from GITHUB_APP_PRIVATE_KEY_FILE (a Docker secret) and gets past its configuration', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'vtta-app-key-')), 'key.pem')
    writeFileSync(file, key)
    const { output } = start({
      GITHUB_APP_ID: '12',
      GITHUB_APP_PRIVATE_KEY_FILE: file,
      SHUTDOWN_GRACE_MS: '500',
    })
    expect(output).not.toMatch(/invalid configuration/)
  })
})
