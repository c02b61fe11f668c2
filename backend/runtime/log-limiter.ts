/**
 * Rate-limits repeated log lines: at most `burst` lines per key per window; what is held back is
 * counted and reported once when the window ends. A broken origin hammered by clients then costs
 * a few lines a minute, not a disk. (Metrics still count every event: the log is never the only record.)
 */
import type { Logger } from './logger.ts'

export interface LimitedLogger {
  /** Logs `msg` under `key` unless that key already used its burst in this window. */
  warn(key: string, fields: Record<string, unknown>, msg: string): void
  error(key: string, fields: Record<string, unknown>, msg: string): void
  /** Reports what is still held back (call on shutdown). */
  flush(): void
}

export function limitLog(
  log: Logger,
  opts: { burst?: number; windowMs?: number; maxKeys?: number } = {}
): LimitedLogger {
  const burst = opts.burst ?? 5
  const windowMs = opts.windowMs ?? 60_000
  const maxKeys = opts.maxKeys ?? 1_000
  const windows = new Map<string, { startedAt: number; logged: number; suppressed: number; msg: string }>()

  const report = (key: string) => {
    const w = windows.get(key)
    if (w && w.suppressed > 0)
      log.warn({ key, suppressed: w.suppressed, windowMs }, `suppressed ${w.suppressed} repeats of: ${w.msg}`)
  }
  const line = (level: 'warn' | 'error', key: string, fields: Record<string, unknown>, msg: string) => {
    const now = Date.now()
    let w = windows.get(key)
    if (w && now - w.startedAt >= windowMs) {
      report(key)
      windows.delete(key)
      w = undefined
    }
    if (!w) {
      // Bounded memory too: hostile inputs could otherwise invent unlimited keys.
      if (windows.size >= maxKeys) {
        const oldest = windows.keys().next().value!
        report(oldest)
        windows.delete(oldest)
      }
      w = { startedAt: now, logged: 0, suppressed: 0, msg }
      windows.set(key, w)
    }
    if (w.logged < burst) {
      w.logged++
      log[level](fields, msg)
    } else {
      w.suppressed++
    }
  }
  return {
    warn: (key, fields, msg) => line('warn', key, fields, msg),
    error: (key, fields, msg) => line('error', key, fields, msg),
    flush() {
      for (const key of windows.keys()) report(key)
      windows.clear()
    },
  }
}
