import { describe, expect, it } from 'vitest'
import { initialHealth, observe, stateOf } from '../../edge/steering/health-state.ts'

const policy = { downAfter: 2, upAfter: 3 }
const run = (steps: boolean[]) =>
  steps.reduce((h, ok, i) => observe(h, { ok, at: i + 1 }, policy), initialHealth(0))

describe('health state machine', () => {
  it('starts healthy', () => {
    expect(stateOf(initialHealth(0))).toBe('healthy')
  })

  it('goes down only after 2 consecutive failures', () => {
    expect(stateOf(run([false]))).toBe('healthy')
    expect(stateOf(run([false, true, false]))).toBe('healthy')
    expect(stateOf(run([false, false]))).toBe('down')
  })

  it('comes back only after 3 consecutive successes', () => {
    expect(stateOf(run([false, false, true, true]))).toBe('down')
    expect(stateOf(run([false, false, true, true, false, true, true]))).toBe('down')
    const back = run([false, false, true, true, true])
    expect(stateOf(back)).toBe('healthy')
    expect(back.since).toBe(5)
  })

  it('shows a degraded datacenter as degraded but keeps it up', () => {
    const h = observe(initialHealth(0), { ok: true, degraded: true, at: 1 }, policy)
    expect(stateOf(h)).toBe('degraded')
    expect(h.up).toBe(true)
  })

  it('shows drained over any other state', () => {
    expect(stateOf({ ...run([false, false]), drained: true })).toBe('drained')
  })
})
