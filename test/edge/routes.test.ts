import { describe, expect, it } from 'vitest'
import { env, exports } from 'cloudflare:workers'
import { createExecutionContext } from 'cloudflare:test'
import worker from '../../edge/index.ts'
import { errorOf } from './responses.ts'

const fetchEdge = (path: string, init?: RequestInit) =>
  exports.default.fetch(new Request(`https://edge.test${path}`, init))

describe('route table', () => {
  it('answers unknown routes with 404 in the JSON error format', async () => {
    const res = await fetchEdge('/no/such/thing')
    expect(res.status).toBe(404)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toEqual({
      error: { code: 'not_found', message: 'no route for GET /no/such/thing' },
    })
  })

  it('answers an oversized, hostile path with a JSON 404, not a crash', async () => {
    const res = await fetchEdge(`/${'%2e%2e/'.repeat(2_000)}etc/passwd?${'x'.repeat(8_000)}`)
    expect(res.status).toBe(404)
    expect((await errorOf(res)).code).toBe('not_found')
  })

  it('answers a known path with the wrong method as not found, not a crash', async () => {
    const res = await fetchEdge('/health', { method: 'DELETE' })
    expect(res.status).toBe(404)
    expect((await errorOf(res)).code).toBe('not_found')
  })

  it('routes POST /webhooks/github (an unsigned call is refused, not lost in a 404)', async () => {
    const res = await fetchEdge('/webhooks/github', { method: 'POST', body: '{}' })
    expect(res.status).toBe(401)
    expect((await errorOf(res)).code).toBe('signature_missing')
  })

  it.each(['/modules/ddb-importer/module.json', '/api/modules', '/api/modules/ddb-importer'])(
    'routes GET %s to a datacenter through the edge cache',
    async (path) => {
      const res = await fetchEdge(path, { headers: { 'x-client-geo': '50.11,8.68' } })
      expect(res.headers.get('x-cache')).toBe('MISS')
      expect(res.headers.get('x-datacenter')).toBe('fra')
    }
  )

  it('GET /health lists the datacenters the edge knows', async () => {
    const res = await fetchEdge('/health')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({
      status: 'ok',
      datacenters: ['fra', 'ams', 'lon', 'nyc', 'cut', 'syd'],
    })
  })
})

describe('request ids', () => {
  it('gives every response an x-request-id, errors included', async () => {
    const ok = await fetchEdge('/health')
    const missing = await fetchEdge('/nope')
    expect(ok.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(missing.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(ok.headers.get('x-request-id')).not.toBe(missing.headers.get('x-request-id'))
  })

  it('keeps a well-formed incoming request id and replaces a hostile one', async () => {
    const kept = await fetchEdge('/health', { headers: { 'x-request-id': 'abc-123' } })
    expect(kept.headers.get('x-request-id')).toBe('abc-123')
    const hostile = await fetchEdge('/health', { headers: { 'x-request-id': 'a\tb<script>'.repeat(40) } })
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })
})

describe('configuration', () => {
  const call = (DATACENTERS: string) =>
    worker.fetch(new Request('https://edge.test/health'), { ...env, DATACENTERS }, createExecutionContext())

  it.each([
    ['not JSON', '{oops', 'DATACENTERS: not valid JSON'],
    [
      'a latitude out of range',
      '[{"id":"fra","name":"F","region":"eu","lat":95,"lon":8,"endpoints":{"web":"http://a","natsWs":"ws://a"}}]',
      '[0].lat',
    ],
    [
      'a missing endpoint',
      '[{"id":"fra","name":"F","region":"eu","lat":50,"lon":8}]',
      '[0].endpoints: required',
    ],
    [
      'duplicate ids',
      JSON.stringify(
        [1, 2].map(() => ({
          id: 'fra',
          name: 'F',
          region: 'eu',
          lat: 50,
          lon: 8,
          endpoints: { web: 'http://a', natsWs: 'ws://a' },
        }))
      ),
      'duplicate id "fra"',
    ],
  ])('a DATACENTERS var with %s answers 500 config_invalid naming the field', async (_case, value, named) => {
    const res = await call(value)
    expect(res.status).toBe(500)
    const error = await errorOf(res)
    expect(error.code).toBe('config_invalid')
    expect(error.message).toContain(named)
  })
})
