import { afterEach, describe, expect, it } from 'vitest'
import { env, exports } from 'cloudflare:workers'
import { createExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import { errorOf } from './responses.ts'

const ADMIN = env.ADMIN_TOKEN!
const PURGE = env.PURGE_TOKEN!
const post = (path: string, token?: string, body?: unknown) =>
  exports.default.fetch(
    new Request(`https://edge.test${path}`, {
      method: 'POST',
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  )
const codeOf = async (res: Response) => (await errorOf(res)).code
const nearAms = () =>
  exports.default.fetch(new Request('https://edge.test/', { headers: { 'x-client-geo': '52.37,4.90' } }))
const stateOf = async (dc: string) => {
  const res = await exports.default.fetch(new Request('https://edge.test/status.json'))
  const doc = await res.json<{ datacenters: Array<{ id: string; state: string }> }>()
  return doc.datacenters.find((d) => d.id === dc)!.state
}

afterEach(async () => {
  await post('/admin/datacenters/ams/undrain', ADMIN)
})

describe('operator API: drain and undrain', () => {
  it.each([
    ['no token', undefined],
    ['an empty token', ''],
    ['a wrong token', `${ADMIN.slice(0, -1)}X`],
    ['a prefix of the token', ADMIN.slice(0, 20)],
    ['a header with control characters', `${ADMIN.slice(0, 5)}\u0007${ADMIN.slice(5)}`],
  ])('refuses %s with 401 and changes nothing', async (_case, token) => {
    const res = await post('/admin/datacenters/ams/drain', token)
    expect(res.status).toBe(401)
    expect(await codeOf(res)).toBe('unauthorized')
    expect(await stateOf('ams')).not.toBe('drained')
  })

  it('answers 404 for an unknown datacenter', async () => {
    const res = await post('/admin/datacenters/xyz/drain', ADMIN)
    expect(res.status).toBe(404)
    expect(await codeOf(res)).toBe('unknown_datacenter')
  })

  it('drain stops new traffic to the datacenter at once; undrain brings it back', async () => {
    expect((await nearAms()).headers.get('x-datacenter')).toBe('ams')
    const drained = await post('/admin/datacenters/ams/drain', ADMIN)
    expect(drained.status).toBe(200)
    // Written to every health vantage of the catalogue, each of which took it.
    const everyVantage = { eu: 'ok', us: 'ok', ap: 'ok' }
    expect(await drained.json()).toEqual({ dc: 'ams', state: 'drained', vantages: everyVantage })
    const moved = await nearAms()
    expect(moved.status).toBe(200)
    expect(moved.headers.get('x-datacenter')).toBe('lon')
    expect(moved.headers.get('x-failover-from')).toBeNull()
    expect(await stateOf('ams')).toBe('drained')

    const undrained = await post('/admin/datacenters/ams/undrain', ADMIN)
    expect(await undrained.json()).toEqual({ dc: 'ams', state: 'healthy', vantages: everyVantage })
    expect((await nearAms()).headers.get('x-datacenter')).toBe('ams')
  })
})

describe('tokens: the admin token does everything, the purge token only purges', () => {
  const purgeBody = { paths: ['/api/modules'] }

  it('the purge token purges', async () => {
    const res = await post('/admin/cache/purge', PURGE, purgeBody)
    expect(res.status).toBe(200)
    expect(Array.isArray((await res.json<{ purged: unknown }>()).purged)).toBe(true)
  })

  it('the admin token purges too', async () => {
    expect((await post('/admin/cache/purge', ADMIN, purgeBody)).status).toBe(200)
  })

  it('the purge token cannot drain a datacenter', async () => {
    const res = await post('/admin/datacenters/ams/drain', PURGE)
    expect(res.status).toBe(401)
    expect(await codeOf(res)).toBe('unauthorized')
    expect(await stateOf('ams')).not.toBe('drained')
  })

  it('a wrong token cannot purge', async () => {
    const res = await post('/admin/cache/purge', `${PURGE.slice(0, -1)}X`, purgeBody)
    expect(res.status).toBe(401)
  })

  const withVars = (vars: Record<string, string | undefined>) =>
    worker.fetch(
      new Request('https://edge.test/admin/cache/purge', {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify(purgeBody),
      }),
      { ...env, ...vars },
      createExecutionContext()
    )

  it.each([
    ['a short ADMIN_TOKEN', { ADMIN_TOKEN: 'local-admin-token' }, /^ADMIN_TOKEN: must be at least 43/],
    ['a short PURGE_TOKEN', { PURGE_TOKEN: 'x'.repeat(42) }, /^PURGE_TOKEN: must be at least 43/],
    [
      'a PURGE_TOKEN equal to ADMIN_TOKEN',
      { PURGE_TOKEN: ADMIN },
      /^PURGE_TOKEN: must differ from ADMIN_TOKEN/,
    ],
    ['a token with spaces', { ADMIN_TOKEN: `${'a'.repeat(40)} b c` }, /^ADMIN_TOKEN: must be printable/],
  ])('refuses %s at start: config_invalid naming it', async (_case, vars, message) => {
    const res = await withVars(vars)
    expect(res.status).toBe(500)
    const error = await errorOf(res)
    expect(error.code).toBe('config_invalid')
    expect(error.message).toMatch(message)
  })

  it('without PURGE_TOKEN the admin token still purges', async () => {
    expect((await withVars({ PURGE_TOKEN: undefined })).status).toBe(200)
  })
})
