import { describe, expect, it } from 'vitest'
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'

// A catalogue of our own: "bos" sits near Boston on a closed port, so nothing has seen it fail yet.
const catalogue = JSON.parse(env.DATACENTERS) as Array<{ id: string; endpoints: { web: string } }>
const withBoston = JSON.stringify([
  ...catalogue.filter((dc) => dc.id !== 'nyc'),
  {
    id: 'bos',
    name: 'Boston',
    lat: 42.36,
    lon: -71.06,
    endpoints: { web: 'http://127.0.0.1:9', natsWs: 'ws://127.0.0.1:9' },
  },
])
const nearBoston = async () => {
  const ctx = createExecutionContext()
  const res = await worker.fetch(
    new Request('https://edge.test/', { headers: { 'x-client-geo': '42.36,-71.06' } }),
    { ...env, DATACENTERS: withBoston },
    ctx
  )
  await waitOnExecutionContext(ctx)
  return res
}

describe('failover on the request path', () => {
  it('retries a refused connection once on the next nearest datacenter, and stops trying the dead one', async () => {
    const first = await nearBoston()
    expect(first.status).toBe(200)
    expect(first.headers.get('x-failover-from')).toBe('bos')
    expect(first.headers.get('x-datacenter')).toBe('lon')
    // The failure was seen: the next request goes straight to the next datacenter.
    const second = await nearBoston()
    expect(second.headers.get('x-datacenter')).toBe('lon')
    expect(second.headers.get('x-failover-from')).toBeNull()
  })
})
