import { describe, expect, it } from 'vitest'
import { parseImageUrl } from '../../edge/images/url.ts'
import { signImagePath, verifyImagePath } from '../../edge/images/signature.ts'

const parse = (path: string) => parseImageUrl(new URL(`https://edge.test${path}`))

describe('image URLs', () => {
  it.each([
    ['/img/width=100/https://www.dndbeyond.com/avatars/1.png', 'https://www.dndbeyond.com/avatars/1.png'],
    ['/img/width=100/https://media.dndbeyond.com/a.jpg?v=2&x=1', 'https://media.dndbeyond.com/a.jpg?v=2&x=1'],
    ['/img/width=100/https:/www.dndbeyond.com/a.png', 'https://www.dndbeyond.com/a.png'],
    ['/img/width=100/https%3A%2F%2Fwww.dndbeyond.com%2Fa.png', 'https://www.dndbeyond.com/a.png'],
    ['/img/_/http://images.dndbeyond.com/a%20b.png', 'http://images.dndbeyond.com/a%20b.png'],
  ])('%s -> source %s', (path, source) => {
    const result = parse(path)
    expect(result).toMatchObject({ ok: true, url: { source } })
  })

  it('reads a signature segment', () => {
    expect(parse('/img/s:abc/width=1/https://x.test/a.png')).toMatchObject({
      ok: true,
      url: { signature: 'abc', options: 'width=1', signed: '/width=1/https://x.test/a.png' },
    })
  })

  it.each([
    ['/img/width=100', 'invalid_url'],
    ['/img/width=100/', 'invalid_url'],
    ['/img/width=100/not a url', 'invalid_url'],
    ['/img/width=100/file:///etc/passwd', 'source_scheme_not_allowed'],
    ['/img/width=100/gopher://x.test/1', 'source_scheme_not_allowed'],
    ['/img/width=100/data:image/png;base64,AAAA', 'source_scheme_not_allowed'],
    ['/img/width=100/https://user:pw@x.test/a.png', 'invalid_url'],
    ['/img/width=100/https%3A%2F%2F%E0%A4%A', 'invalid_url'],
    [`/img/width=100/https://x.test/${'a'.repeat(2100)}`, 'invalid_url'],
    ['/img/s:abc', 'invalid_url'],
  ])('%s is refused as %s', (path, code) => {
    expect(parse(path)).toMatchObject({ ok: false, code })
  })
})

describe('URL signatures', () => {
  const secret = 'a-signing-key-of-some-length'
  it('verifies its own signature and nothing else', async () => {
    const signature = await signImagePath(secret, '/width=100/https://x.test/a.png')
    expect(signature).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(await verifyImagePath(secret, '/width=100/https://x.test/a.png', signature)).toBe(true)
    expect(await verifyImagePath(secret, '/width=101/https://x.test/a.png', signature)).toBe(false)
    expect(
      await verifyImagePath('another-key-of-some-length', '/width=100/https://x.test/a.png', signature)
    ).toBe(false)
    expect(await verifyImagePath(secret, '/width=100/https://x.test/a.png', undefined)).toBe(false)
    expect(await verifyImagePath(secret, '/width=100/https://x.test/a.png', 'not base64 !')).toBe(false)
    expect(await verifyImagePath(secret, '/width=100/https://x.test/a.png', signature.slice(0, 20))).toBe(
      false
    )
  })
})
