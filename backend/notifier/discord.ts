/**
 * Executing a Discord webhook with `?wait=true` (the answer carries the message id and surfaces
 * errors), honouring rate limits as Discord documents them (developers/topics/rate-limits.mdx):
 * a 429's `retry_after` (body, float seconds) or `Retry-After`, and `X-RateLimit-Remaining: 0` with
 * `X-RateLimit-Reset-After` on any answer — the next call waits until the bucket resets. 401 and
 * 404 (invalid token, unknown webhook) are permanent: the webhook is not called again by this
 * process, which also keeps us off Discord's invalid-request limit.
 */
import { z } from 'zod'

export type DiscordResult =
  | { kind: 'sent'; status: number; messageId: string | null }
  | { kind: 'rate_limited'; status: 429; retryAfterMs: number; scope: string }
  /** The request cannot succeed as it is (400, 401, 403, 404, …). */
  | { kind: 'permanent'; status: number; code: number | null; message: string }
  /** Worth retrying: 5xx, network failure, timeout. */
  | { kind: 'retry'; status: number | null; message: string }

const errorBodySchema = z.object({
  message: z.string().optional(),
  code: z.number().optional(),
  retry_after: z.number().optional(),
  global: z.boolean().optional(),
})

const USER_AGENT = 'DiscordBot (https://vtta.io, 0.1.0)'

export class DiscordWebhook {
  readonly #url: string
  readonly #timeoutMs: number
  #blockedUntil = 0
  /** Set after a 401/404: this webhook is gone until the configuration changes. */
  disabledReason: string | null = null

  constructor(url: string, timeoutMs: number) {
    const u = new URL(url)
    u.searchParams.set('wait', 'true')
    this.#url = u.href
    this.#timeoutMs = timeoutMs
  }

  /** How long the rate limit still asks us to wait, in milliseconds. */
  waitMs(): number {
    return Math.max(0, this.#blockedUntil - Date.now())
  }

  #block(ms: number): void {
    this.#blockedUntil = Math.max(this.#blockedUntil, Date.now() + ms)
  }

  async execute(message: unknown): Promise<DiscordResult> {
    let res: Response
    try {
      res = await fetch(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT },
        body: JSON.stringify(message),
        signal: AbortSignal.timeout(this.#timeoutMs),
      })
    } catch (err) {
      return { kind: 'retry', status: null, message: noAnswer(err, this.#timeoutMs) }
    }
    const text = await res.text().catch(() => '')
    let body: z.infer<typeof errorBodySchema> = {}
    let messageId: string | null = null
    try {
      const data: unknown = JSON.parse(text)
      body = errorBodySchema.safeParse(data).data ?? {}
      const id = (data as { id?: unknown } | null)?.id
      if (typeof id === 'string') messageId = id
    } catch {
      // not JSON (204, or an HTML error page)
    }
    const remaining = res.headers.get('x-ratelimit-remaining')
    const resetAfter = Number(res.headers.get('x-ratelimit-reset-after'))
    if (remaining === '0' && Number.isFinite(resetAfter)) this.#block(resetAfter * 1000)

    if (res.ok) return { kind: 'sent', status: res.status, messageId }
    if (res.status === 429) {
      const header = Number(res.headers.get('retry-after'))
      const seconds =
        body.retry_after ?? (Number.isFinite(header) ? header : Number.isFinite(resetAfter) ? resetAfter : 1)
      const retryAfterMs = Math.ceil(seconds * 1000)
      this.#block(retryAfterMs)
      const scope = res.headers.get('x-ratelimit-scope') ?? (body.global ? 'global' : 'user')
      return { kind: 'rate_limited', status: 429, retryAfterMs, scope }
    }
    if (res.status >= 500)
      return { kind: 'retry', status: res.status, message: body.message ?? `HTTP ${res.status}` }
    const result = {
      kind: 'permanent' as const,
      status: res.status,
      code: body.code ?? null,
      message: body.message ?? `HTTP ${res.status}`,
    }
    if (res.status === 401 || res.status === 404)
      this.disabledReason = `Discord answered ${res.status} ${result.message} (code ${result.code ?? '-'})`
    return result
  }
}

/**
 * Why a call got no answer, in words for the log and the dead letter. fetch rejects with "fetch
 * failed" and the reason (refused, DNS, TLS) as its cause; Node's connection to several addresses
 * fails with an AggregateError whose message may be empty but whose errors say why; the timeout
 * signal rejects with a TimeoutError.
 */
function noAnswer(err: unknown, timeoutMs: number): string {
  if (!(err instanceof Error)) return String(err)
  if (err.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`
  const cause: unknown = err.cause
  if (cause instanceof AggregateError)
    return `${err.message}: ${cause.errors.map((e: unknown) => reasonOf(e)).join('; ')}`
  if (cause !== undefined) return `${err.message}: ${reasonOf(cause)}`
  return err.message
}

const reasonOf = (e: unknown): string =>
  e instanceof Error ? e.message || ('code' in e && typeof e.code === 'string' ? e.code : e.name) : String(e)
