import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { baseConfigSchema, ConfigError, loadConfig } from '../../backend/runtime/config.ts'

import { createUser } from '@nats-io/nkeys'

const seed = new TextDecoder().decode(createUser().getSeed())
const valid = { DC: 'fra', NATS_URL: 'nats://127.0.0.1:4222', NATS_NKEY_SEED: seed }

describe('service configuration', () => {
  it('applies defaults to a minimal environment', () => {
    expect(loadConfig(baseConfigSchema, valid)).toMatchObject({
      DC: 'fra',
      HTTP_PORT: 8080,
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE_MS: 10_000,
    })
  })

  it.each([
    ['DC missing', { NATS_URL: valid.NATS_URL, NATS_NKEY_SEED: seed }, 'DC is required'],
    ['NATS_URL missing', { DC: 'fra', NATS_NKEY_SEED: seed }, 'NATS_URL is required'],
    ['NATS_NKEY_SEED missing', { DC: 'fra', NATS_URL: valid.NATS_URL }, 'NATS_NKEY_SEED is required'],
    [
      'NATS_NKEY_SEED not a user seed',
      { ...valid, NATS_NKEY_SEED: 'SAxyz' },
      'NATS_NKEY_SEED: must be a NATS user nkey seed',
    ],
    [
      'NATS_URL not a nats URL',
      { ...valid, NATS_URL: 'http://127.0.0.1:4222' },
      'NATS_URL="http://127.0.0.1:4222"',
    ],
    ['HTTP_PORT out of range', { ...valid, HTTP_PORT: '70000' }, 'HTTP_PORT="70000"'],
    ['HTTP_PORT not a number', { ...valid, HTTP_PORT: 'eighty' }, 'HTTP_PORT="eighty"'],
    ['LOG_LEVEL unknown', { ...valid, LOG_LEVEL: 'loud' }, 'LOG_LEVEL="loud"'],
    ['DC with a slash', { ...valid, DC: 'fra/../x' }, 'DC="fra/../x"'],
  ])('%s stops with a message naming the variable', (_case, env, named) => {
    expect(() => loadConfig(baseConfigSchema, env)).toThrow(ConfigError)
    expect(() => loadConfig(baseConfigSchema, env)).toThrow(named)
  })

  it('never repeats a secret in its error message', () => {
    const leaked = `${seed.slice(0, 20)}lowercase-is-not-base32`
    expect(() => loadConfig(baseConfigSchema, { ...valid, NATS_NKEY_SEED: leaked })).toThrow(
      /NATS_NKEY_SEED: /
    )
    expect(() => loadConfig(baseConfigSchema, { ...valid, NATS_NKEY_SEED: leaked })).not.toThrow(leaked)
  })

  describe('secrets from files (Docker secrets)', () => {
    const schema = baseConfigSchema.extend({ GITHUB_WEBHOOK_SECRET: z.string().min(1) })
    const secretFile = (content: string) => {
      const path = join(mkdtempSync(join(tmpdir(), 'vtta-secret-')), 'secret')
      writeFileSync(path, content)
      return path
    }

    it('reads <NAME>_FILE and trims the trailing newline', () => {
      const config = loadConfig(schema, { ...valid, GITHUB_WEBHOOK_SECRET_FILE: secretFile('s3cret\n') })
      expect(config.GITHUB_WEBHOOK_SECRET).toBe('s3cret')
    })

    it('prefers the variable itself when both are set', () => {
      const config = loadConfig(schema, {
        ...valid,
        GITHUB_WEBHOOK_SECRET: 'direct',
        GITHUB_WEBHOOK_SECRET_FILE: secretFile('file'),
      })
      expect(config.GITHUB_WEBHOOK_SECRET).toBe('direct')
    })

    it('names the _FILE variable when its file cannot be read', () => {
      expect(() =>
        loadConfig(schema, { ...valid, GITHUB_WEBHOOK_SECRET_FILE: '/nonexistent/secret' })
      ).toThrow('GITHUB_WEBHOOK_SECRET_FILE: cannot read /nonexistent/secret (ENOENT)')
    })

    it('ignores _FILE variables of other programs', () => {
      expect(() =>
        loadConfig(schema, { ...valid, GITHUB_WEBHOOK_SECRET: 'x', TF_CLI_CONFIG_FILE: '/nope' })
      ).not.toThrow()
    })

    it('says a missing secret is required', () => {
      expect(() => loadConfig(schema, valid)).toThrow('GITHUB_WEBHOOK_SECRET is required')
    })
  })
})
