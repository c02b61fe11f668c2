/**
 * How a step of the pipeline fails. A Rejection is the release's own fault and final: recorded,
 * announced, acknowledged. A TransientError is ours or GitHub's: the delivery is retried with backoff,
 * then dead-lettered. Anything else unexpected is treated as transient.
 */
import type { RejectionCode } from '#shared/releases.ts'

export class Rejection extends Error {
  override name = 'Rejection'
  readonly code: RejectionCode

  constructor(code: RejectionCode, reason: string) {
    super(reason)
    this.code = code
  }
}

/**
 * What an error says, for a message: its cause when it has one (fetch's "fetch failed" carries the
 * network error there), else its message.
 */
export function errorDetail(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  if (err.cause instanceof Error) return String(err.cause)
  return typeof err.cause === 'string' ? err.cause : err.message
}

export class TransientError extends Error {
  override name = 'TransientError'
  /** How long to wait before trying again, when the other side said (Retry-After). */
  readonly retryAfterMs: number | undefined

  constructor(message: string, retryAfterMs?: number) {
    super(message)
    this.retryAfterMs = retryAfterMs
  }
}
