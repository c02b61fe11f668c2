import { describe, expect, it } from 'vitest'
import { matchesEtag } from '#shared/http/etag.ts'

describe('matchesEtag (weak comparison, RFC 9110 13.1.2)', () => {
  it.each([
    ['"a"', '"a"', true],
    ['W/"a"', '"a"', true],
    ['"a"', 'W/"a"', true],
    ['"b", "a"', '"a"', true],
    ['"b" ,W/"a"', '"a"', true],
    ['*', '"a"', true],
    ['"b"', '"a"', false],
    ['"a', '"a"', false],
    ['', '"a"', false],
    [undefined, '"a"', false],
    ['"a"', null, false],
    ['*', undefined, false],
  ])('If-None-Match %j against %j is %s', (header, etag, expected) => {
    expect(matchesEtag(header, etag)).toBe(expected)
  })
})
