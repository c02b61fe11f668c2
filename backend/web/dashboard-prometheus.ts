/**
 * One range query to Prometheus's HTTP API (`GET /api/v1/query_range`), bounded: the caller's signal
 * (a deadline) aborts it, an answer larger than `maxBytes` is cut off unread, and only a well-formed
 * matrix is accepted. Every failure is a PrometheusError saying which of three things went wrong,
 * for the web service's typed answer: `timeout` (504 metrics_timeout), `unreachable` or `invalid`
 * (503 metrics_unavailable). The query is the caller's and fixed: nothing a client sends reaches here.
 */
import { z } from 'zod'
import { boundedText } from '#shared/dashboard.ts'
import { errorMessage, fetchFailure } from '#shared/error-message.ts'

export class PrometheusError extends Error {
  override name = 'PrometheusError'
  readonly kind: 'timeout' | 'unreachable' | 'invalid'

  constructor(kind: PrometheusError['kind'], message: string) {
    super(message)
    this.kind = kind
  }
}

/** A sample value as Prometheus writes it: a string, "NaN" and "+Inf" included. */
const sampleSchema = z.tuple([z.number(), z.string()])

/** The API's envelope with a range vector (docs: "Range queries", "Range vectors"). */
const matrixAnswerSchema = z.object({
  status: z.literal('success'),
  data: z.object({
    resultType: z.literal('matrix'),
    result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(sampleSchema) })),
  }),
})
const errorAnswerSchema = z.object({ status: z.literal('error'), errorType: z.string(), error: z.string() })

export type Matrix = z.infer<typeof matrixAnswerSchema>['data']['result']

export interface RangeQuery {
  query: string
  /** Unix seconds. */
  start: number
  end: number
  step: number
}

export async function queryRange(
  base: string,
  q: RangeQuery,
  opts: { signal: AbortSignal; maxBytes: number }
): Promise<Matrix> {
  const url = new URL('api/v1/query_range', base.endsWith('/') ? base : `${base}/`)
  url.search = new URLSearchParams({
    query: q.query,
    start: String(q.start),
    end: String(q.end),
    step: String(q.step),
  }).toString()
  let text: string
  let status: number
  try {
    const res = await fetch(url, { signal: opts.signal, redirect: 'error' })
    status = res.status
    const body = await boundedText(res, opts.maxBytes)
    if (body === null) throw new PrometheusError('invalid', `answer larger than ${opts.maxBytes} bytes`)
    text = body
  } catch (error) {
    if (error instanceof PrometheusError) throw error
    if (opts.signal.aborted) throw new PrometheusError('timeout', 'Prometheus did not answer in time')
    throw new PrometheusError('unreachable', `Prometheus cannot be reached: ${fetchFailure(error)}`)
  }
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (error) {
    throw new PrometheusError('invalid', `HTTP ${status}, not JSON: ${errorMessage(error)}`)
  }
  const answer = matrixAnswerSchema.safeParse(body)
  if (answer.success) return answer.data.data.result
  const refused = errorAnswerSchema.safeParse(body)
  throw new PrometheusError(
    'invalid',
    refused.success
      ? `HTTP ${status}, ${refused.data.errorType}: ${refused.data.error}`
      : `HTTP ${status}, not a range vector: ${answer.error.issues[0]?.message ?? 'unknown shape'}`
  )
}
