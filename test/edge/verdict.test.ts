/**
 * The majority verdict over the vantages' views (edge/vantages/verdict.ts), pure: three vantages, as
 * the world catalogue has (eu, us, ap), each with its own view of each datacenter.
 */
import { describe, expect, it } from 'vitest'
import { initialHealth, observe, stateOf, type DatacenterHealth } from '../../edge/steering/health-state.ts'
import { staleAfterMs, verdictOf } from '../../edge/vantages/verdict.ts'
import { isNewer, type VantageView } from '../../edge/vantages/views.ts'

const policy = { downAfter: 2, upAfter: 3 }
const now = 1_000_000
const staleMs = staleAfterMs(5_000)

/** A datacenter as one view holds it after these probe results, oldest first. */
const seen = (...results: boolean[]): DatacenterHealth =>
  results.reduce((h, ok, i) => observe(h, { ok, at: now - 1_000 + i }, policy), initialHealth(0))
const down = seen(false, false)
const up = seen(true)

const view = (
  vantage: string,
  datacenters: Record<string, DatacenterHealth>,
  at = now - 1_000,
  version = 1
): VantageView => ({ vantage, at, version, datacenters })

const verdict = (views: Array<VantageView | null>, dc = 'nyc') => verdictOf([dc], views, now, staleMs)[dc]!

describe('the majority verdict', () => {
  it('keeps a datacenter up when one vantage of three sees it down', () => {
    const v = verdict([view('eu', { nyc: down }), view('us', { nyc: up }), view('ap', { nyc: up })])
    expect(v).toMatchObject({ up: true, drained: false, votes: { up: 2, down: 1, abstain: 0 } })
    expect(stateOf(v)).toBe('healthy')
  })

  it('takes it down when two of three see it down', () => {
    const v = verdict([view('eu', { nyc: down }), view('us', { nyc: up }), view('ap', { nyc: down })])
    expect(v).toMatchObject({ up: false, votes: { up: 1, down: 2, abstain: 0 } })
    expect(stateOf(v)).toBe('down')
  })

  it('counts only fresh views: one older than 3 probe intervals abstains', () => {
    const old = now - staleMs - 1
    // Two stale views saying down do not outvote one fresh view saying up...
    const outvoted = verdict([
      view('eu', { nyc: down }, old),
      view('us', { nyc: up }),
      view('ap', { nyc: down }, old),
    ])
    expect(outvoted).toMatchObject({ up: true, votes: { up: 1, down: 0, abstain: 2 } })
    // ...and one stale view saying up does not save a datacenter the fresh majority sees down.
    const lost = verdict([
      view('eu', { nyc: down }),
      view('us', { nyc: down }, now - staleMs),
      view('ap', { nyc: up }, old),
    ])
    expect(lost).toMatchObject({ up: false, votes: { up: 0, down: 2, abstain: 1 } })
  })

  it('counts a vantage never heard from as abstaining', () => {
    const v = verdict([view('eu', { nyc: down }), null, view('ap', { nyc: down })])
    expect(v).toMatchObject({ up: false, votes: { up: 0, down: 2, abstain: 1 } })
  })

  it('keeps it up on a tie: one down, one up, one abstaining', () => {
    const v = verdict([view('eu', { nyc: down }), view('us', { nyc: up }), view('ap', {})])
    expect(v).toMatchObject({ up: true, votes: { up: 1, down: 1, abstain: 1 } })
  })

  it('does not count a view that has not observed the datacenter yet (a vantage just started)', () => {
    const v = verdict([
      view('eu', { nyc: down }),
      view('us', { nyc: initialHealth(now) }),
      view('ap', { nyc: initialHealth(now) }),
    ])
    expect(v).toMatchObject({ up: false, votes: { up: 0, down: 1, abstain: 2 } })
  })

  it('counts a datacenter up when no fresh view has it (a new one)', () => {
    expect(verdict([view('eu', { nyc: down }, 0)])).toMatchObject({
      up: true,
      votes: { up: 0, down: 0, abstain: 1 },
    })
    expect(verdict([])).toMatchObject({ up: true, drained: false, votes: { up: 0, down: 0, abstain: 0 } })
  })

  it('brings it back once enough views saw UP_AFTER good probes to undo the majority', () => {
    const recovering = seen(false, false, true, true)
    const back = seen(false, false, true, true, true)
    expect(
      verdict([view('eu', { nyc: recovering }), view('us', { nyc: back }), view('ap', { nyc: recovering })])
        .up
    ).toBe(false)
    expect(
      verdict([view('eu', { nyc: back }), view('us', { nyc: back }), view('ap', { nyc: recovering })]).up
    ).toBe(true)
  })

  it('says degraded when most of the views that see it up say degraded', () => {
    const degraded = observe(initialHealth(0), { ok: true, degraded: true, at: now - 1 }, policy)
    const two = verdict([
      view('eu', { nyc: degraded }),
      view('us', { nyc: degraded }),
      view('ap', { nyc: up }),
    ])
    expect(stateOf(two)).toBe('degraded')
    const one = verdict([view('eu', { nyc: degraded }), view('us', { nyc: up }), view('ap', { nyc: up })])
    expect(stateOf(one)).toBe('healthy')
  })
})

describe('drains: the operator word, last writer wins', () => {
  const drained = (at: number): DatacenterHealth => ({ ...up, drained: true, drainedAt: at })
  const undrained = (at: number): DatacenterHealth => ({ ...up, drained: false, drainedAt: at })

  it('drains on a drain only one vantage received, over any health', () => {
    const v = verdict([
      view('eu', { nyc: { ...down, drained: true, drainedAt: 10 } }),
      view('us', { nyc: down }),
      view('ap', { nyc: up }),
    ])
    expect(v).toMatchObject({ drained: true, drainedAt: 10 })
    expect(stateOf(v)).toBe('drained')
  })

  it('takes the latest of a drain and an undrain, whichever view holds it', () => {
    expect(verdict([view('eu', { nyc: drained(10) }), view('us', { nyc: undrained(20) })])).toMatchObject({
      drained: false,
      drainedAt: 20,
    })
    expect(verdict([view('eu', { nyc: drained(30) }), view('us', { nyc: undrained(20) })])).toMatchObject({
      drained: true,
      drainedAt: 30,
    })
    expect(verdict([view('eu', { nyc: undrained(10) }), view('us', { nyc: drained(10) })]).drained).toBe(true)
  })

  it('counts a stale view drain: the operator word does not age', () => {
    const v = verdict([view('eu', { nyc: drained(10) }, 0), view('us', { nyc: up }), view('ap', { nyc: up })])
    expect(v).toMatchObject({ drained: true, votes: { up: 2, down: 0, abstain: 1 } })
  })
})

describe('copies of a view', () => {
  it('takes a later one, or at the same time a higher version', () => {
    const known = view('eu', {}, 100, 5)
    expect(isNewer(view('eu', {}, 101, 1), known)).toBe(true)
    expect(isNewer(view('eu', {}, 100, 6), known)).toBe(true)
    expect(isNewer(view('eu', {}, 100, 5), known)).toBe(false)
    expect(isNewer(view('eu', {}, 99, 9), known)).toBe(false)
    expect(isNewer(known, undefined)).toBe(true)
  })
})
