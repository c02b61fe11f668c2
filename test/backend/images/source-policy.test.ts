import { describe, expect, it } from 'vitest'
import { checkSourceUrl, parseSourceHosts, type SourcePolicy } from '../../../backend/images/source-policy.ts'

const policy = (text: string): SourcePolicy => {
  const parsed = parseSourceHosts(text)
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.policy
}
const dndb = policy(
  'www.dndbeyond.com, *.dndbeyond.com,media-waterdeep.cursecdn.com,127.0.0.1:18801,[::1]:18802'
)

describe('IMAGE_SOURCE_HOSTS', () => {
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
    const parsed = parseSourceHosts(text)
    expect(parsed.ok).toBe(false)
    if (!parsed.ok) expect(parsed.message).toMatch(message)
  })
})

describe('source URL check', () => {
  it.each([
    'https://www.dndbeyond.com/avatars/1.png',
    'https://media.dndbeyond.com/x.jpg',
    'https://a.b.dndbeyond.com/x.jpg',
    'http://media-waterdeep.cursecdn.com/x.jpg?v=1',
    'HTTPS://WWW.DNDBEYOND.COM/x.png',
  ])('allows %s', (url) => {
    const check = checkSourceUrl(dndb, url)
    expect(check.ok).toBe(true)
    if (check.ok) expect(check.pinnedAddress).toBeUndefined()
  })

  it('pins an explicit origin to its address, port included', () => {
    expect(checkSourceUrl(dndb, 'http://127.0.0.1:18801/a.png')).toMatchObject({
      ok: true,
      pinnedAddress: '127.0.0.1',
    })
    expect(checkSourceUrl(dndb, 'https://[::1]:18802/a.png')).toMatchObject({
      ok: true,
      pinnedAddress: '::1',
    })
    expect(checkSourceUrl(dndb, 'http://2130706433:18801/a.png')).toMatchObject({
      ok: true,
      pinnedAddress: '127.0.0.1',
    })
  })

  it.each([
    ['https://dndbeyond.com/x.png', 'source_host_not_allowed'],
    ['https://www.dndbeyond.com.evil.com/x.png', 'source_host_not_allowed'],
    ['https://evildndbeyond.com/x.png', 'source_host_not_allowed'],
    ['https://www.dndbeyond.com./x.png', 'source_host_not_allowed'],
    ['http://127.0.0.1:18802/a.png', 'source_address_blocked'],
    ['http://127.0.0.1/a.png', 'source_address_blocked'],
    ['http://[::1]:18801/a.png', 'source_address_blocked'],
    ['http://0x7f000001:18803/', 'source_address_blocked'],
    ['http://8.8.8.8/a.png', 'source_host_not_allowed'],
    ['ftp://www.dndbeyond.com/x.png', 'source_scheme_not_allowed'],
    ['javascript:alert(1)', 'source_scheme_not_allowed'],
    ['https://u:p@www.dndbeyond.com/x.png', 'source_invalid_url'],
    ['//www.dndbeyond.com/x.png', 'source_invalid_url'],
    ['https://', 'source_invalid_url'],
  ])('refuses %s with %s', (url, code) => {
    expect(checkSourceUrl(dndb, url)).toMatchObject({ ok: false, code })
  })
})
