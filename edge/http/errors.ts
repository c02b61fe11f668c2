/**
 * The one error format of every edge route: `{ "error": { "code", "message" } }`, with a stable
 * machine-readable `code` and the request id in the `x-request-id` header.
 */
import type { Context, ErrorHandler, NotFoundHandler } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { AppEnv } from '../env.ts'
import { EdgeConfigError } from '../config.ts'

export type ErrorCode =
  | 'not_found'
  | 'not_implemented'
  | 'bad_request'
  | 'config_invalid'
  | 'unknown_datacenter'
  | 'datacenter_unreachable'
  | 'datacenter_timeout'
  | 'unauthorized'
  | 'invalid_option'
  | 'webhook_disabled'
  | 'signature_missing'
  | 'headers_invalid'
  | 'payload_too_large'
  | 'payload_invalid'
  | 'queue_unavailable'
  | 'invalid_url'
  | 'signature_invalid'
  | 'url_signature_invalid'
  | 'source_scheme_not_allowed'
  | 'admin_disabled'
  | 'nats_no_responders'
  | 'nats_timeout'
  | 'rate_limited'
  | 'internal'

export class ApiError extends Error {
  readonly status: ContentfulStatusCode
  readonly code: ErrorCode

  constructor(status: ContentfulStatusCode, code: ErrorCode, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

export function errorResponse(
  c: Context<AppEnv>,
  status: ContentfulStatusCode,
  code: ErrorCode,
  message: string
) {
  return c.json({ error: { code, message } }, status)
}

export const onError: ErrorHandler<AppEnv> = (err, c) => {
  if (err instanceof ApiError) return errorResponse(c, err.status, err.code, err.message)
  if (err instanceof EdgeConfigError) {
    console.error(JSON.stringify({ level: 'error', requestId: c.get('requestId'), msg: err.message }))
    return errorResponse(c, 500, 'config_invalid', err.message)
  }
  console.error(
    JSON.stringify({
      level: 'error',
      requestId: c.get('requestId'),
      msg: String(err),
      stack: (err as Error).stack,
    })
  )
  return errorResponse(c, 500, 'internal', 'internal error')
}

export const notFound: NotFoundHandler<AppEnv> = (c) =>
  errorResponse(c, 404, 'not_found', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`)
