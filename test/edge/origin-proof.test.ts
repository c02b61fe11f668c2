/**
 * The edge presents its proof (the Access service token pair) on every request to a datacenter's
 * web endpoint; the tests' web services refuse anything else (finding M3).
 */
import { describe, expect, it } from 'vitest'
import { env } from 'cloudflare:workers'
import { createExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import { errorOf } from './responses.ts'

const fra = { 'x-client-geo': '50.11,8.68' }
const call = (
  path: string,
  vars: Record<string, string | undefined> = {},
  headers: Record<string, string> = {}
) =>
  worker.fetch(
    new Request(`https://edge.test${path}`, { headers: { ...fra, ...headers } }),
    { ...env, ...vars },
    createExecutionContext()
  )

describe('the edge proves itself to the datacenters', () => {
  it('is served with its proof', async () => {
    const res = await call('/')
    expect(res.status).toBe(200)
    expect(res.headers.get('x-datacenter')).toBe('fra')
  })

  it('is refused by the datacenter with a wrong secret (the proof is what lets it in)', async () => {
    const res = await call('/', { ORIGIN_CLIENT_SECRET: `${env.ORIGIN_CLIENT_SECRET!.slice(0, -1)}X` })
    expect(res.status).toBe(403)
    expect((await errorOf(res)).code).toBe('origin_proof_required')
  })

  it("never forwards a client's own CF-Access headers in place of its proof", async () => {
    const res = await call(
      '/api/modules',
      {},
      {
        'cf-access-client-id': 'attacker.access',
        'cf-access-client-secret': 'attacker-secret',
      }
    )
    expect(res.status).toBe(200)
  })

  it.each([
    ['ORIGIN_CLIENT_ID', { ORIGIN_CLIENT_ID: undefined }],
    ['ORIGIN_CLIENT_SECRET', { ORIGIN_CLIENT_SECRET: undefined }],
    ['ORIGIN_CLIENT_SECRET', { ORIGIN_CLIENT_SECRET: 'too-short' }],
  ])('without a valid %s every request answers 500 config_invalid naming it', async (name, vars) => {
    const res = await call('/health', vars)
    expect(res.status).toBe(500)
    const error = await errorOf(res)
    expect(error.code).toBe('config_invalid')
    expect(error.message).toMatch(new RegExp(`^${name}: `))
  })
})
