/**
 * If-None-Match for the edge and the web service alike. It uses the weak comparison of RFC 9110
 * 13.1.2, as a GET's If-None-Match must: `W/` is ignored on both sides, `*` matches any ETag, and
 * a list is split on commas with optional whitespace.
 */
export function matchesEtag(
  ifNoneMatch: string | null | undefined,
  etag: string | null | undefined
): boolean {
  if (!ifNoneMatch || !etag) return false
  const opaque = stripWeak(etag)
  return ifNoneMatch.split(',').some((tag) => {
    const t = tag.trim()
    return t === '*' || stripWeak(t) === opaque
  })
}

const stripWeak = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag)
