/** A malformed configuration stops the exporter at start-up with exit 78 and a line naming the variable. */
import { describe, expect, it } from 'vitest'
import { exporterConfigSchema } from '../../../backend/nats-exporter/config.ts'
import { loadConfig } from '../../../backend/runtime/config.ts'
import { testNatsCredentials } from '../../support/nats-credentials.ts'
import { startExporter } from './exporter-process.ts'

const valid = {
  DC: 'fra',
  NATS_URL: 'nats://127.0.0.1:4222',
  NATS_NKEY_SEED_FILE: testNatsCredentials().seedFile('nats-exporter'),
}

describe('the exporter configuration', () => {
  it('defaults to port 7777 on every interface, 1.5 s per request, and no certificate check', () => {
    const config = loadConfig(exporterConfigSchema, valid)
    expect(config).toMatchObject({
      INTERNAL_HTTP_HOST: '0.0.0.0',
      INTERNAL_HTTP_PORT: 7777,
      NATS_REQUEST_TIMEOUT_MS: 1_500,
    })
    expect(config.NATS_WS_TLS_URL).toBeUndefined()
  })

  it.each([
    [{ NATS_REQUEST_TIMEOUT_MS: '9000' }, /NATS_REQUEST_TIMEOUT_MS="9000": Too big/],
    [{ NATS_WS_TLS_URL: 'ws://nats-fra1:8443' }, /NATS_WS_TLS_URL="ws:\/\/nats-fra1:8443": must be an https/],
    [
      { NATS_WS_TLS_URL: 'https://nats-fra1:8443', NATS_WS_TLS_CA_FILE: '/nonexistent/ca.pem' },
      /NATS_WS_TLS_CA_FILE="\/nonexistent\/ca.pem": cannot read .*ENOENT/,
    ],
    [{ NATS_URL: 'http://nats-fra1:4222' }, /NATS_URL="http:\/\/nats-fra1:4222"/],
    [{ DC: undefined }, /DC is required/],
  ])('refuses %j, naming the variable', (change, message) => {
    const env: Record<string, string | undefined> = { ...valid, ...change }
    expect(() => loadConfig(exporterConfigSchema, env)).toThrow(message)
  })

  it('never echoes the seed', () => {
    expect(() =>
      loadConfig(exporterConfigSchema, {
        ...valid,
        NATS_NKEY_SEED_FILE: undefined,
        NATS_NKEY_SEED: 'SUnotaseed',
      })
    ).toThrow(/^invalid configuration: NATS_NKEY_SEED: must be a NATS user nkey seed/)
  })

  it('the process exits 78 with one JSON line naming the variable', async () => {
    const exporter = await startExporter({ ...valid, INTERNAL_HTTP_PORT: 'seven' }, { waitReady: false })
    expect(await exporter.proc.exited).toBe('exited with code 78')
    const line = JSON.parse((await exporter.log()).trim()) as { level: string; msg: string }
    expect(line.level).toBe('fatal')
    expect(line.msg).toMatch(/^nats-exporter: invalid configuration: INTERNAL_HTTP_PORT="seven"/)
  })
})
