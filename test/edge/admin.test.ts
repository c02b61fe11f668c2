import { afterEach, describe, expect, it } from 'vitest'
import { exports } from 'cloudflare:workers'

const post = (path: string, token?: string) =>
  exports.default.fetch(
    new Request(`https://edge.test${path}`, {
      method: 'POST',
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    })
  )
const nearAms = () =>
  exports.default.fetch(new Request('https://edge.test/', { headers: { 'x-client-geo': '52.37,4.90' } }))
const stateOf = async (dc: string) => {
  const doc = (await (await exports.default.fetch(new Request('https://edge.test/status.json'))).json()) as {
    datacenters: Array<{ id: string; state: string }>
  }
  return doc.datacenters.find((d) => d.id === dc)!.state
}

afterEach(async () => {
  await post('/admin/datacenters/ams/undrain', 'test-admin-token')
})

describe('operator API: drain and undrain', () => {
  it.each([
    ['no token', undefined],
    ['an empty token', ''],
    ['a wrong token', 'test-admin-tokeX'],
    ['a prefix of the token', 'test-admin'],
    ['a header with control characters', 'test\u0007admin-token'],
  ])('refuses %s with 401 and changes nothing', async (_case, token) => {
    const res = await post('/admin/datacenters/ams/drain', token)
    expect(res.status).toBe(401)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized')
    expect(await stateOf('ams')).not.toBe('drained')
  })

  it('answers 404 for an unknown datacenter', async () => {
    const res = await post('/admin/datacenters/xyz/drain', 'test-admin-token')
    expect(res.status).toBe(404)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unknown_datacenter')
  })

  it('drain stops new traffic to the datacenter at once; undrain brings it back', async () => {
    expect((await nearAms()).headers.get('x-datacenter')).toBe('ams')
    const drained = await post('/admin/datacenters/ams/drain', 'test-admin-token')
    expect(drained.status).toBe(200)
    expect(await drained.json()).toEqual({ dc: 'ams', state: 'drained' })
    const moved = await nearAms()
    expect(moved.status).toBe(200)
    expect(moved.headers.get('x-datacenter')).toBe('lon')
    expect(moved.headers.get('x-failover-from')).toBeNull()
    expect(await stateOf('ams')).toBe('drained')

    const undrained = await post('/admin/datacenters/ams/undrain', 'test-admin-token')
    expect(await undrained.json()).toEqual({ dc: 'ams', state: 'healthy' })
    expect((await nearAms()).headers.get('x-datacenter')).toBe('ams')
  })
})
