import { describe, expect, it } from 'vitest'
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import { errorOf } from './responses.ts'

const catalogue = JSON.parse(env.DATACENTERS) as Array<{ id: string; endpoints: { web: string } }>

/** A datacenter of our own near Boston; `web` decides how it fails. */
const nearBostonDc = (id: string, web: string, lon = -71.06) => ({
  id,
  name: id,
  region: 'us',
  lat: 42.36,
  lon,
  endpoints: { web, natsWs: 'ws://127.0.0.1:9' },
})

/** `GET /` from `geo` against this catalogue (and vars). */
async function from(geo: string, datacenters: unknown[], vars: Record<string, string> = {}) {
  const ctx = createExecutionContext()
  const res = await worker.fetch(
    new Request('https://edge.test/', { headers: { 'x-client-geo': geo } }),
    { ...env, ...vars, DATACENTERS: JSON.stringify(datacenters) },
    ctx
  )
  await waitOnExecutionContext(ctx)
  return res
}

/** `GET /` from near Boston against this catalogue (and vars). */
const fromBoston = (datacenters: unknown[], vars: Record<string, string> = {}) =>
  from('42.36,-71.06', datacenters, vars)

describe('failover on the request path', () => {
  // "bos" sits near Boston on a closed port, so nothing has seen it fail yet.
  const withBoston = [...catalogue.filter((dc) => dc.id !== 'nyc'), nearBostonDc('bos', 'http://127.0.0.1:9')]

  it('retries a refused connection once on the next nearest datacenter, and stops trying the dead one', async () => {
    const first = await fromBoston(withBoston)
    expect(first.status).toBe(200)
    expect(first.headers.get('x-failover-from')).toBe('bos')
    expect(first.headers.get('x-datacenter')).toBe('lon')
    // The failure was seen: the next request goes straight to the next datacenter.
    const second = await fromBoston(withBoston)
    expect(second.headers.get('x-datacenter')).toBe('lon')
    expect(second.headers.get('x-failover-from')).toBeNull()
  })

  it('holds a failed datacenter out of rotation only for the edge location that saw it fail', async () => {
    // "hbos" is not in the registry's catalogue: only this isolate's holds can steer around it.
    const datacenters = [
      ...catalogue.filter((dc) => dc.id !== 'nyc'),
      nearBostonDc('hbos', 'http://127.0.0.1:9'),
    ]
    // Hartford enters the edge at a location of its own, and its nearest datacenter is hbos too.
    const vars = {
      EDGE_LOCATIONS: JSON.stringify([{ id: 'hfd', name: 'Hartford', lat: 41.76, lon: -72.68 }]),
    }
    const fromHartford = () => from('41.76,-72.68', datacenters, vars)
    expect((await fromBoston(datacenters, vars)).headers.get('x-failover-from')).toBe('hbos')
    expect((await fromBoston(datacenters, vars)).headers.get('x-failover-from')).toBeNull()
    // Boston's failure holds nothing for Hartford: it tries hbos itself once, then holds it too.
    expect((await fromHartford()).headers.get('x-failover-from')).toBe('hbos')
    const again = await fromHartford()
    expect(again.status).toBe(200)
    expect(again.headers.get('x-failover-from')).toBeNull()
  })
})

/**
 * The rule of steering/failover.ts: 504 datacenter_timeout when any datacenter was reached but ran
 * out of time, 502 datacenter_unreachable when every one failed outright. Each case has datacenters
 * of its own (ids nothing else uses), so no health memo of another test changes its steering.
 */
describe('when no datacenter can answer', () => {
  const silent = env.SILENT_WEB
  const refused = 'http://127.0.0.1:9'
  const fast = { UPSTREAM_TIMEOUT_MS: '300' }

  it('answers 504 datacenter_timeout when every datacenter timed out', async () => {
    const res = await fromBoston(
      [nearBostonDc('slow-a', silent), nearBostonDc('slow-b', silent, -71.5)],
      fast
    )
    expect(res.status).toBe(504)
    const error = await errorOf(res)
    expect(error.code).toBe('datacenter_timeout')
    expect(error.message).toBe(
      'no datacenter could answer (slow-a: timeout: no answer within 300 ms; slow-b: timeout: no answer within 300 ms)'
    )
  })

  it('answers 504 datacenter_timeout when one timed out and the other refused', async () => {
    for (const [first, second] of [
      [nearBostonDc('mix-slow', silent), nearBostonDc('mix-dead', refused, -71.5)],
      [nearBostonDc('mix-dead-2', refused), nearBostonDc('mix-slow-2', silent, -71.5)],
    ]) {
      const res = await fromBoston([first, second], fast)
      expect(res.status).toBe(504)
      const error = await errorOf(res)
      expect(error.code).toBe('datacenter_timeout')
      expect(error.message).toMatch(/: timeout: no answer within 300 ms/)
      expect(error.message).toMatch(/: unreachable: /)
    }
  })

  it('answers 502 datacenter_unreachable when every datacenter failed outright', async () => {
    const res = await fromBoston(
      [nearBostonDc('dead-a', refused), nearBostonDc('dead-b', refused, -71.5)],
      fast
    )
    expect(res.status).toBe(502)
    const error = await errorOf(res)
    expect(error.code).toBe('datacenter_unreachable')
    expect(error.message).toMatch(
      /^no datacenter could answer \(dead-a: unreachable: .*; dead-b: unreachable: /
    )
  })
})
