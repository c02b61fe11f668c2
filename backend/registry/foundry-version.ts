/**
 * Version ordering exactly as Foundry's own update check does it (`foundry.utils.isNewerVersion`):
 * split on ".", compare parts numerically when both are numeric, otherwise as strings; a version
 * with more parts wins when the shared parts are equal. Quirks kept on purpose, because this is what
 * Foundry clients will conclude from our manifests: "1.0.0-rc.1" is newer than "1.0.0", "v1" is
 * newer than "2" — hence tags lose their leading `v` before they become versions.
 */

/** Foundry's `Number.isNumeric`: anything `+n` turns into a number, except "" (and null). */
function isNumeric(part: string): boolean {
  return part !== '' && !Number.isNaN(Number(part))
}

/** True when `v1` is newer than `v0` by Foundry's rules. */
export function isNewerVersion(v1: string | number, v0: string | number): boolean {
  if (typeof v1 === 'number' && typeof v0 === 'number') return v1 > v0
  const v1Parts = String(v1).split('.')
  const v0Parts = String(v0).split('.')
  for (const [i, p1] of v1Parts.entries()) {
    const p0 = v0Parts[i]
    if (p0 === undefined) return true
    if (isNumeric(p0) && isNumeric(p1)) {
      if (Number(p1) !== Number(p0)) return Number(p1) > Number(p0)
    }
    if (p1 !== p0) return p1 > p0
  }
  return false
}

/** The tag as a version: one leading `v`/`V` removed ("v1.2.3" → "1.2.3"). */
export function versionFromTag(tag: string): string {
  return /^[vV](?=\d)/.test(tag) ? tag.slice(1) : tag
}

/** The newest of some versions by Foundry's rules, or null when there are none. */
export function newestVersion(versions: Iterable<string>): string | null {
  let newest: string | null = null
  for (const v of versions) if (newest === null || isNewerVersion(v, newest)) newest = v
  return newest
}
