/**
 * GitHub's rate limit as the stand-in plays it: every API answer carries the `x-ratelimit-*`
 * headers of its caller's budget (5,000 requests an hour per installation token; anonymous callers
 * share one), and a test can make every answer "rate limited" (403 or 429, remaining 0, reset at
 * the end of the window) for a while.
 */
import type { Auth } from './app.ts'

const RATE_LIMIT = 5000
export const HOUR_MS = 3_600_000

export interface RateLimitWindow {
  seconds: number
  status?: 403 | 429
  retryAfter?: number
}

export function rateLimits() {
  /** Per token (or "anonymous"): requests counted in the current hour. */
  const budgets = new Map<string, { used: number; resetAt: number }>()
  let limited: { until: number; status: 403 | 429; retryAfter?: number } | null = null

  /** GitHub's rate-limit headers for this caller's budget, counting this request. */
  const headersFor = (a: Auth): Record<string, string> => {
    const key = a.kind === 'installation' ? a.token : 'anonymous'
    let budget = budgets.get(key)
    if (!budget || budget.resetAt <= Date.now())
      budgets.set(key, (budget = { used: 0, resetAt: Date.now() + HOUR_MS }))
    budget.used++
    return {
      'x-ratelimit-limit': String(RATE_LIMIT),
      'x-ratelimit-remaining': String(Math.max(0, RATE_LIMIT - budget.used)),
      'x-ratelimit-reset': String(Math.ceil(budget.resetAt / 1000)),
      'x-ratelimit-used': String(budget.used),
      'x-ratelimit-resource': 'core',
    }
  }

  return {
    headersFor,
    /** Every API answer is rate-limited for `seconds` from now. */
    limitFor: (o: RateLimitWindow) => {
      limited = { until: Date.now() + o.seconds * 1000, status: o.status ?? 403, retryAfter: o.retryAfter }
    },
    /** The rate-limited window in force now, if any. */
    current: () => {
      if (limited && limited.until <= Date.now()) limited = null
      return limited
    },
  }
}
