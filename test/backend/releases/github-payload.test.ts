/** parseReleasePayload: a payload that is not a release event still names what it can of its release. */
import { describe, expect, it } from 'vitest'
import { parseReleasePayload } from '../../../backend/releases/github-payload.ts'

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

describe('parseReleasePayload', () => {
  it.each([
    ['not an object', 5, {}],
    [
      'ids and tag of a release missing its other fields',
      { repository: { id: 7 }, release: { id: 9, tag_name: 'v1' } },
      { repositoryId: 7, releaseId: 9, tag: 'v1' },
    ],
    ['ids of the wrong type', { repository: { id: '7' }, release: { id: 9.5, tag_name: 3 } }, {}],
    ['an id beyond the safe integers', { repository: { id: 2 ** 60 }, release: { id: 0 } }, {}],
    ['a release that is not an object', { repository: { id: 7 }, release: 'v1' }, { repositoryId: 7 }],
    ['a tag longer than GitHub allows', { release: { tag_name: 'v'.repeat(300) } }, { tag: 'v'.repeat(255) }],
  ])('%s', (_name, payload, partial) => {
    const parsed = parseReleasePayload(bytes(payload))
    expect(parsed.ok).toBe(false)
    if (!parsed.ok) expect(parsed.partial).toEqual(partial)
  })

  it('a body that is not JSON names nothing', () => {
    expect(parseReleasePayload(new TextEncoder().encode('{nope'))).toEqual({
      ok: false,
      reason: 'the delivery body is not JSON',
      partial: {},
    })
  })
})
