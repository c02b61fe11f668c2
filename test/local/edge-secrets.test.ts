/** The local platform's edge credentials: generated once, private, long, and given only to their holders. */
import { mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadEdgeSecrets } from '../../local/edge-secrets.ts'
import { localEnv } from '../../local/env.ts'
import { datacenterSpecs, edgeSpec } from '../../local/platform-specs.ts'
import catalogue from '#shared/datacenters.json' with { type: 'json' }

const tempDir = () => mkdtempSync(join(tmpdir(), 'vtta-secrets-'))

describe('edge secrets of the local platform', () => {
  it('are generated on first start, random, at least 32 bytes, 0600, and kept across restarts', () => {
    const dir = tempDir()
    const first = loadEdgeSecrets(dir)
    expect(first.created).toBe(true)
    const values = Object.values(first.secrets)
    expect(new Set(values).size).toBe(values.length)
    for (const v of values) expect(v.length).toBeGreaterThanOrEqual(43)
    expect(statSync(first.path).mode & 0o777).toBe(0o600)
    const again = loadEdgeSecrets(dir)
    expect(again.created).toBe(false)
    expect(again.secrets).toEqual(first.secrets)
    // Another checkout gets other values: nothing is a fixed default.
    expect(loadEdgeSecrets(tempDir()).secrets.ADMIN_TOKEN).not.toBe(first.secrets.ADMIN_TOKEN)
  })

  it('are never created by the scripts that act on a running platform', () => {
    const dir = tempDir()
    expect(() => loadEdgeSecrets(dir, { create: false })).toThrow(/is `npm start` running/)
    const { secrets } = loadEdgeSecrets(dir)
    expect(loadEdgeSecrets(dir, { create: false }).secrets).toEqual(secrets)
  })

  it('are the defaults of npm start, and the caller environment wins', () => {
    const { secrets } = loadEdgeSecrets(tempDir())
    expect(localEnv({}, '', secrets).values.ADMIN_TOKEN).toBe(secrets.ADMIN_TOKEN)
    expect(localEnv({ ADMIN_TOKEN: 'x'.repeat(50) }, '', secrets).values.ADMIN_TOKEN).toBe('x'.repeat(50))
  })

  it('reach only their holders: the edge both tokens, the release service the purge token only', () => {
    const dir = tempDir()
    const { values } = localEnv({}, 'http://127.0.0.1:8787', loadEdgeSecrets(dir).secrets)
    const [fra] = datacenterSpecs(catalogue, dir, values)
    const envOf = (service: string) => fra!.services.find((s) => s.service === service)!.env
    expect(envOf('releases').PURGE_TOKEN).toBe(values.PURGE_TOKEN)
    for (const service of ['web', 'images', 'releases', 'notifier'])
      expect(envOf(service).ADMIN_TOKEN).toBeUndefined()
    for (const service of ['web', 'images', 'notifier']) expect(envOf(service).PURGE_TOKEN).toBeUndefined()
    const edgeVars = JSON.parse(
      edgeSpec(catalogue, { localDir: dir, edgePort: 8787, env: values, tunables: {} }).env.EDGE_VARS!
    ) as Record<string, string>
    expect(edgeVars.ADMIN_TOKEN).toBe(values.ADMIN_TOKEN)
    expect(edgeVars.PURGE_TOKEN).toBe(values.PURGE_TOKEN)
  })
})
