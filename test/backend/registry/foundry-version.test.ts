import { describe, expect, it } from 'vitest'
import { isNewerVersion, newestVersion, versionFromTag } from '../../../backend/registry/foundry-version.ts'

describe("Foundry's isNewerVersion", () => {
  it.each([
    ['1.10.0', '1.9.0', true],
    ['1.9.0', '1.10.0', false],
    ['1.13.5.1', '1.13.5', true],
    ['1.13.5', '1.13.5.1', false],
    ['1.0.0', '1.0.0', false],
    ['2.0.0', '1.99.99', true],
    ['12', '5', true],
    // Foundry's quirks, kept: a pre-release suffix compares as a string and looks newer…
    ['1.0.0-rc.1', '1.0.0', true],
    ['2.2.11', '2.3.0-rc.1', false],
    // …and a "v" prefix wins against any number, which is why tags lose it.
    ['v1.0.0', '1.0.1', true],
    ['1.0.10', '1.0.9', true],
    ['0.8.6', '0.8.10', false],
  ])('%s newer than %s: %s', (v1, v0, expected) => {
    expect(isNewerVersion(v1, v0)).toBe(expected)
  })

  it('compares numbers as numbers', () => {
    expect(isNewerVersion(1.2, 1.1)).toBe(true)
    expect(isNewerVersion(1.1, 1.2)).toBe(false)
  })

  it('strips one leading v from a tag, only before a digit', () => {
    expect(versionFromTag('v1.2.3')).toBe('1.2.3')
    expect(versionFromTag('V2.0')).toBe('2.0')
    expect(versionFromTag('1.2.3')).toBe('1.2.3')
    expect(versionFromTag('vv1')).toBe('vv1')
    expect(versionFromTag('version')).toBe('version')
  })

  it('finds the newest of a set by the same rules', () => {
    expect(newestVersion(['1.9.0', '1.10.0', '1.2.0'])).toBe('1.10.0')
    expect(newestVersion([])).toBeNull()
  })
})
