import { Writable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it, vi } from 'vitest'
import { limitLog } from '../../backend/runtime/log-limiter.ts'

function capture() {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>)
      done()
    },
  })
  return { log: pino({ level: 'info' }, sink), lines }
}

describe('rate-limited log lines', () => {
  it('logs a burst per key, then counts the rest and reports them when the window ends', () => {
    vi.useFakeTimers()
    try {
      const { log, lines } = capture()
      const limited = limitLog(log, { burst: 3, windowMs: 1_000 })
      for (let i = 0; i < 1_000; i++) limited.error('origin-down:x.test', { i }, 'origin failed')
      limited.error('other', {}, 'another problem')
      expect(lines.filter((l) => l.msg === 'origin failed')).toHaveLength(3)
      expect(lines.filter((l) => l.msg === 'another problem')).toHaveLength(1)
      vi.advanceTimersByTime(1_000)
      limited.error('origin-down:x.test', {}, 'origin failed')
      expect(lines.find((l) => l.suppressed === 997)).toMatchObject({ key: 'origin-down:x.test' })
      expect(lines.filter((l) => l.msg === 'origin failed')).toHaveLength(4)
    } finally {
      vi.useRealTimers()
    }
  })

  it('keeps memory bounded when every line has a new key', () => {
    const { log, lines } = capture()
    const limited = limitLog(log, { burst: 1, windowMs: 60_000, maxKeys: 10 })
    for (let i = 0; i < 5_000; i++) limited.warn(`key-${i}`, {}, 'x')
    limited.flush()
    expect(lines.length).toBe(5_000) // one each: nothing repeated, nothing held back
  })

  it('flush reports what is held back', () => {
    const { log, lines } = capture()
    const limited = limitLog(log, { burst: 1 })
    for (let i = 0; i < 10; i++) limited.warn('k', {}, 'same')
    limited.flush()
    expect(lines.at(-1)).toMatchObject({ key: 'k', suppressed: 9 })
  })
})
