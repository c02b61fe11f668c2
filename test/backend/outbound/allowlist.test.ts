import { describe, expect, it } from 'vitest'
import { checkUrl, parseAllowlist, type Allowlist } from '../../../backend/outbound/allowlist.ts'

const allowlist = (text: string): Allowlist => {
  const parsed = parseAllowlist(text, 'IMAGE_SOURCE_HOSTS')
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.allowlist
}
const dndb = allowlist(
  'www.dndbeyond.com, *.dndbeyond.com,media-waterdeep.cursecdn.com,127.0.0.1:18801,[::1]:18802'
)

describe('an allowlist (IMAGE_SOURCE_HOSTS)', () => {
  it('reads hosts, wildcards and explicit origins', () => {
    expect([...dndb.hosts]).toEqual(['www.dndbeyond.com', 'media-waterdeep.cursecdn.com'])
    expect(dndb.suffixes).toEqual(['.dndbeyond.com'])
    expect([...dndb.origins]).toEqual(['127.0.0.1:18801', '[::1]:18802'])
  })

  it.each([
    ['', /at least one host/],
    [' , ', /at least one host/],
    ['localhost:8080', /port may only follow an IP address/],
    ['*', /host name/],
    ['*.com:80', /host name|wildcard/],
    ['*.127.0.0.1', /wildcard/],
    ['*.localhost', /wildcard/],
    ['http://example.com', /host name/],
    ['example.com/path', /host name/],
    ['user@example.com', /host name/],
    ['127.0.0.1:0', /bad port/],
    ['127.0.0.1:70000', /bad port/],
  ])('refuses %j', (text, message) => {
    const parsed = parseAllowlist(text, 'IMAGE_SOURCE_HOSTS')
    expect(parsed.ok).toBe(false)
    if (!parsed.ok) expect(parsed.message).toMatch(message)
  })
})

describe('URL check', () => {
  it.each([
    'https://www.dndbeyond.com/avatars/1.png',
    'https://media.dndbeyond.com/x.jpg',
    'https://a.b.dndbeyond.com/x.jpg',
    'http://media-waterdeep.cursecdn.com/x.jpg?v=1',
    'HTTPS://WWW.DNDBEYOND.COM/x.png',
    'https://www.dndbeyond.com:443/x.png',
  ])('allows %s', (url) => {
    const check = checkUrl(dndb, url, 'the source')
    expect(check.ok).toBe(true)
    if (check.ok) expect(check.pinnedAddress).toBeUndefined()
  })

  it('pins an explicit origin to its address, port included', () => {
    expect(checkUrl(dndb, 'http://127.0.0.1:18801/a.png', 'the source')).toMatchObject({
      ok: true,
      pinnedAddress: '127.0.0.1',
    })
    expect(checkUrl(dndb, 'https://[::1]:18802/a.png', 'the source')).toMatchObject({
      ok: true,
      pinnedAddress: '::1',
    })
    expect(checkUrl(dndb, 'http://2130706433:18801/a.png', 'the source')).toMatchObject({
      ok: true,
      pinnedAddress: '127.0.0.1',
    })
  })

  it.each([
    ['https://dndbeyond.com/x.png', 'host_not_allowed'],
    ['https://www.dndbeyond.com:8443/x.png', 'host_not_allowed'],
    ['http://a.dndbeyond.com:443/x.png', 'host_not_allowed'],
    ['https://www.dndbeyond.com.evil.com/x.png', 'host_not_allowed'],
    ['https://evildndbeyond.com/x.png', 'host_not_allowed'],
    ['https://www.dndbeyond.com./x.png', 'host_not_allowed'],
    ['http://127.0.0.1:18802/a.png', 'address_blocked'],
    ['http://127.0.0.1/a.png', 'address_blocked'],
    ['http://[::1]:18801/a.png', 'address_blocked'],
    ['http://0x7f000001:18803/', 'address_blocked'],
    ['http://8.8.8.8/a.png', 'host_not_allowed'],
    ['ftp://www.dndbeyond.com/x.png', 'scheme_not_allowed'],
    ['javascript:alert(1)', 'scheme_not_allowed'],
    ['https://u:p@www.dndbeyond.com/x.png', 'invalid_url'],
    ['//www.dndbeyond.com/x.png', 'invalid_url'],
    ['https://', 'invalid_url'],
  ])('refuses %s with %s', (url, code) => {
    expect(checkUrl(dndb, url, 'the source')).toMatchObject({ ok: false, code })
  })

  it('names the variable that would allow a refused host or address, never the address', () => {
    expect(checkUrl(dndb, 'http://10.1.2.3/a.png', 'the source')).toEqual({
      ok: false,
      code: 'address_blocked',
      message:
        "the source's address is not allowed (private); only an explicit ip:port entry in IMAGE_SOURCE_HOSTS reaches a private or loopback address",
    })
    expect(checkUrl(dndb, 'https://evil.example/a.png', 'the source')).toMatchObject({
      message: 'the source host evil.example is not allowed (not in IMAGE_SOURCE_HOSTS)',
    })
  })
})
