import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  baseConfigSchema,
  ConfigError,
  loadConfig,
  regionList,
  workQueueConfig,
} from '../../backend/runtime/config.ts'
import { regionIdSchema } from '#shared/catalogue.ts'

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

/**
 * Production's backend tasks learn their region and the JetStream layout from the catalogue (a Docker
 * config, DATACENTERS_FILE) and their DC (the node's hostname): Swarm templates cannot read node labels.
 */
describe("the catalogue decides a task's region and JetStream layout", () => {
  const worldFile = 'test/fixtures/datacenters/six-continents.json'
  const world = readFileSync(worldFile, 'utf8')
  // What web, images, releases and notifier read of it, together.
  const schema = baseConfigSchema.extend({
    DC_NAME: z.string().optional(),
    REGION: regionIdSchema.optional(),
    ...workQueueConfig(5),
    REGISTRY_MIRROR_REGIONS: regionList(),
  })
  const inWorld = (dc: string, extra: Record<string, string> = {}) =>
    loadConfig(schema, { ...valid, DC: dc, DATACENTERS: world, ...extra })

  it('gives a task in nyc3 its region, name and the layout npm start gives its processes', () => {
    expect(inWorld('nyc3')).toMatchObject({
      DC: 'nyc3',
      DC_NAME: 'New York',
      REGION: 'us',
      JETSTREAM_REPLICAS: 3,
      JETSTREAM_HOME_REGION: 'eu',
      REGISTRY_MIRROR_REGIONS: ['us', 'ap'],
    })
    expect(inWorld('sgp1')).toMatchObject({ REGION: 'ap', JETSTREAM_HOME_REGION: 'eu' })
  })

  it('reads the catalogue from DATACENTERS_FILE, as the Docker config is mounted', () => {
    const config = loadConfig(schema, { ...valid, DC: 'sfo3', DATACENTERS_FILE: worldFile })
    expect(config).toMatchObject({ REGION: 'us', DC_NAME: 'San Francisco' })
  })

  it('places nothing and mirrors nothing for a catalogue of one region', () => {
    const europe = readFileSync('shared/datacenters.json', 'utf8')
    const config = loadConfig(schema, { ...valid, DC: 'ams', DATACENTERS: europe })
    expect(config).toMatchObject({ REGION: 'eu', JETSTREAM_REPLICAS: 3, REGISTRY_MIRROR_REGIONS: [] })
    expect(config.JETSTREAM_HOME_REGION).toBeUndefined()
  })

  it('accepts a variable set to what the catalogue says (a list in any order)', () => {
    expect(
      inWorld('fra1', { REGION: 'eu', JETSTREAM_REPLICAS: '3', REGISTRY_MIRROR_REGIONS: 'ap, us' })
    ).toMatchObject({ REGION: 'eu', REGISTRY_MIRROR_REGIONS: ['ap', 'us'] })
  })

  it.each([
    [
      'a region the catalogue contradicts',
      { REGION: 'eu' },
      'REGION="eu" disagrees with DATACENTERS, which gives nyc3 "us"',
    ],
    [
      'a home region other than the one holding the JetStream majority',
      { JETSTREAM_HOME_REGION: 'us' },
      'JETSTREAM_HOME_REGION="us" disagrees with DATACENTERS, which gives nyc3 "eu"',
    ],
    [
      'mirrors the catalogue does not have',
      { REGISTRY_MIRROR_REGIONS: 'us' },
      'REGISTRY_MIRROR_REGIONS="us" disagrees with DATACENTERS, which gives nyc3 "us,ap"',
    ],
  ])('refuses %s, naming the variable and both values', (_case, extra, message) => {
    expect(() => inWorld('nyc3', extra)).toThrow(ConfigError)
    expect(() => inWorld('nyc3', extra)).toThrow(message)
  })

  it('refuses a home region when the catalogue has one region', () => {
    const europe = readFileSync('shared/datacenters.json', 'utf8')
    expect(() =>
      loadConfig(schema, { ...valid, DC: 'ams', DATACENTERS: europe, JETSTREAM_HOME_REGION: 'eu' })
    ).toThrow('JETSTREAM_HOME_REGION="eu" disagrees with DATACENTERS, which gives ams none')
  })

  it('refuses a DC the catalogue does not have, naming the file and its datacenters', () => {
    expect(() => loadConfig(schema, { ...valid, DC: 'blr1', DATACENTERS_FILE: worldFile })).toThrow(
      `DC="blr1" is no datacenter of DATACENTERS_FILE=${worldFile} (fra1, ams3, lon1, nyc3, sfo3, sgp1)`
    )
  })

  it('refuses a catalogue that does not validate, naming the field, or the quorum it would lose', () => {
    const entries = JSON.parse(world) as Array<Record<string, unknown>>
    const noRegion = JSON.stringify(entries.map((dc, i) => (i === 3 ? { ...dc, region: 'US' } : dc)))
    expect(() => inWorld('fra1', { DATACENTERS: noRegion })).toThrow(
      /^invalid configuration: DATACENTERS: \[3\]\.region: must be 2-16 lowercase/
    )
    // sfo3 with JetStream: eu holds 3 of 6, no strict majority.
    const tie = JSON.stringify(entries.map((dc) => ({ ...dc, jetstream: true })))
    expect(() => inWorld('fra1', { DATACENTERS: tie })).toThrow(
      /DATACENTERS: \(root\): no region holds a strict majority of the 6 JetStream servers \(eu 3, us 2, ap 1\)/
    )
    expect(() => inWorld('fra1', { DATACENTERS: '[{' })).toThrow(
      /^invalid configuration: DATACENTERS: not JSON/
    )
  })

  it('leaves a service that reads none of it alone (only what the schema names is filled in or checked)', () => {
    const config = loadConfig(baseConfigSchema, {
      ...valid,
      DC: 'nyc3',
      DATACENTERS: world,
      REGION: 'elsewhere',
    })
    expect(config).not.toHaveProperty('REGION')
  })
})
