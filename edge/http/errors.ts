/**
 * The one error format of every edge route: `{ "error": { "code", "message" } }`, with a stable
 * machine-readable `code` and the request id in the `x-request-id` header.
 *
 * Every code has exactly one HTTP status, in `edgeErrors` below (as `imageErrors` in
 * shared/images.ts has for the image service): a route throws `new ApiError(code, message)` and
 * never picks a status itself, so one code cannot answer two statuses. The image service's own
 * errors pass through /img with their own codes and statuses (imageErrors).
 */
import type { Context, ErrorHandler, NotFoundHandler } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { AppEnv } from '../env.ts'
import { EdgeConfigError } from '../config.ts'

/** Stable error codes of the edge, with the HTTP status each answers. */
export const edgeErrors = {
  // The request
  not_found: 404,
  bad_request: 400,
  invalid_url: 400,
  invalid_option: 400,
  source_scheme_not_allowed: 400,
  payload_invalid: 400,
  payload_too_large: 413,
  rate_limited: 429,
  // Who sends it
  unauthorized: 401,
  signature_missing: 401,
  headers_invalid: 401,
  /** A webhook body that does not match its X-Hub-Signature-256. */
  signature_invalid: 401,
  /** An image URL without a valid `s:<signature>` while IMAGE_SIGNING_KEY is set. */
  url_signature_invalid: 403,
  // What the edge is configured for
  unknown_datacenter: 404,
  admin_disabled: 503,
  /** No health vantage took an operator's change (admin/route.ts). */
  health_unavailable: 503,
  webhook_disabled: 503,
  config_invalid: 500,
  // The datacenters behind the edge
  datacenter_unreachable: 502,
  datacenter_timeout: 504,
  nats_no_responders: 503,
  nats_timeout: 504,
  queue_unavailable: 503,
  /** Datacenters answered, but none could read its Prometheus (the dashboard, status/dashboard-route.ts). */
  metrics_unavailable: 503,
  internal: 500,
} as const satisfies Record<string, ContentfulStatusCode>
export type ErrorCode = keyof typeof edgeErrors

export class ApiError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string) {
    super(message)
    this.code = code
  }

  get status(): ContentfulStatusCode {
    return edgeErrors[this.code]
  }
}

export function errorResponse(c: Context<AppEnv>, code: ErrorCode, message: string) {
  return c.json({ error: { code, message } }, edgeErrors[code])
}

export const onError: ErrorHandler<AppEnv> = (err, c) => {
  if (err instanceof ApiError) return errorResponse(c, err.code, err.message)
  if (err instanceof EdgeConfigError) {
    console.error(JSON.stringify({ level: 'error', requestId: c.get('requestId'), msg: err.message }))
    return errorResponse(c, 'config_invalid', err.message)
  }
  console.error(
    JSON.stringify({
      level: 'error',
      requestId: c.get('requestId'),
      msg: String(err),
      stack: err.stack,
    })
  )
  return errorResponse(c, 'internal', 'internal error')
}

export const notFound: NotFoundHandler<AppEnv> = (c) =>
  errorResponse(c, 'not_found', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`)
