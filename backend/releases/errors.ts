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

export class TransientError extends Error {
  override name = 'TransientError'
  /** How long to wait before trying again, when the other side said (Retry-After). */
  readonly retryAfterMs: number | undefined

  constructor(message: string, retryAfterMs?: number) {
    super(message)
    this.retryAfterMs = retryAfterMs
  }
}
