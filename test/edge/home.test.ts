import { describe, expect, it } from 'vitest'
import { exports } from 'cloudflare:workers'

const home = (headers: Record<string, string> = {}, cf?: Record<string, unknown>) =>
  exports.default.fetch(new Request('https://edge.test/', { headers, ...(cf ? { cf } : {}) }))

describe('GET / is proxied to the nearest datacenter web service', () => {
  it.each([
    ['Frankfurt', '50.11,8.68', 'fra'],
    ['Munich', '48.14,11.58', 'fra'],
    ['Amsterdam', '52.37,4.90', 'ams'],
    ['Rotterdam', '51.92,4.48', 'ams'],
    ['London', '51.51,-0.13', 'lon'],
    ['Dublin', '53.35,-6.26', 'lon'],
  ])('a client in %s (x-client-geo %s) is served by %s', async (_city, geo, dc) => {
    const res = await home({ 'x-client-geo': geo })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-datacenter')).toBe(dc)
    const html = await res.text()
    expect(html).toContain(`data-datacenter="${dc}"`)
    expect(html).toContain('<title>vtta.io</title>')
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('uses request.cf coordinates when there is no override header', async () => {
    const res = await home({}, { latitude: '51.50', longitude: '-0.12', country: 'GB' })
    expect(res.headers.get('x-datacenter')).toBe('lon')
  })

  it.each(['', 'london', '51.5', '51.5;-0.1', '91,0', '0,181', 'NaN,NaN', '1e3,5', '51.5,-0.1,7', ' , '])(
    'ignores a malformed x-client-geo %j and steers by request.cf',
    async (geo) => {
      const res = await home({ 'x-client-geo': geo }, { latitude: '52.36', longitude: '4.89' })
      expect(res.status).toBe(200)
      expect(res.headers.get('x-datacenter')).toBe('ams')
    }
  )

  it('ignores an oversized x-client-geo', async () => {
    const res = await home(
      { 'x-client-geo': `51.5,-0.1${'0'.repeat(8_000)}` },
      { latitude: '52.36', longitude: '4.89' }
    )
    expect(res.headers.get('x-datacenter')).toBe('ams')
  })

  it('falls back to the catalogue order without any location', async () => {
    const res = await home()
    expect(res.headers.get('x-datacenter')).toBe('fra')
  })
})
