/** Structured JSON logs to stdout (pino); the container runtime bounds and ships them. */
import { pino, type Logger } from 'pino'

export type { Logger }

export function createLogger(bindings: { service: string; dc: string }, level: string): Logger {
  return pino({
    level,
    base: { ...bindings, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  })
}
