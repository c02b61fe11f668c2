/**
 * Every error a backend service answers over HTTP, as data: a stable code, its status, and the
 * message sent unless the thrower says more. A route throws `new HttpError(code, message?)` (or
 * rejects with it); the one error handler (http.ts) renders it as `{ "error": { "code", "message" } }`
 * with the table's status. Errors from Express itself and from body parsers are mapped onto the
 * table by `asHttpError`; anything else is `internal`, its detail for the log only.
 *
 * The web service is the only service with public routes, so its codes live here beside the
 * runtime's own; the edge passes them through to clients unchanged, so a code, once published,
 * keeps its meaning.
 */
import { z } from 'zod'

export interface HttpErrorSpec {
  status: number
  /** Sent when the thrower gives no message of its own. */
  message: string
  /** Sent as `retry-after` (seconds): the condition is expected to pass. */
  retryAfterSeconds?: number
}

export const httpErrors = {
  // The runtime's own: requests no route takes, and failures no route expected.
  bad_request: { status: 400, message: 'the request is malformed' },
  /** A body parser could not parse the body (malformed JSON, say). */
  payload_invalid: { status: 400, message: 'the request body cannot be parsed' },
  not_found: { status: 404, message: 'no such route' },
  payload_too_large: { status: 413, message: 'the request body is too large' },
  unsupported_media_type: {
    status: 415,
    message: "the request body's charset or content encoding is not supported",
  },
  /** An unexpected failure: the detail goes to the log, never to the client. */
  internal: { status: 500, message: 'internal error' },

  // The web service (web/origin-proof.ts, web/modules-api.ts, web/dashboard.ts).
  origin_proof_required: {
    status: 403,
    message: 'this endpoint answers only the vtta.io edge (Access service token required)',
  },
  invalid_module_id: {
    status: 400,
    message: 'a module id is lower-case letters, digits, "-" and "_", at most 100 characters',
  },
  invalid_version: { status: 400, message: 'a version starts with a digit, at most 64 characters' },
  module_not_found: { status: 404, message: 'no such module' },
  version_not_found: { status: 404, message: 'no such version' },
  registry_unavailable: {
    status: 503,
    message: 'the module registry cannot be read right now',
    retryAfterSeconds: 5,
  },
  invalid_range: { status: 400, message: 'range is one of 1h, 3h, 6h' },
  /** PROMETHEUS_URL unset, Prometheus unreachable, or its answer unusable (shared/dashboard.ts). */
  metrics_unavailable: {
    status: 503,
    message: 'the metrics cannot be read right now',
    retryAfterSeconds: 30,
  },
  metrics_timeout: { status: 504, message: 'Prometheus did not answer in time' },
} as const satisfies Record<string, HttpErrorSpec>

export type HttpErrorCode = keyof typeof httpErrors

/** The one error class of the HTTP routes: a code from `httpErrors`, whose status it answers with. */
export class HttpError extends Error {
  override name = 'HttpError'
  readonly code: HttpErrorCode

  constructor(code: HttpErrorCode, message?: string, options?: ErrorOptions) {
    super(message ?? httpErrors[code].message, options)
    this.code = code
  }

  get spec(): HttpErrorSpec {
    return httpErrors[this.code]
  }

  get status(): number {
    return this.spec.status
  }
}

/**
 * What Express and the body parsers throw (http-errors): a 4xx `status`, body-parser's `type`, and
 * `expose` when the message is meant for the client.
 */
const foreignClientErrorSchema = z.object({
  status: z.number().int().min(400).max(499),
  message: z.string(),
  type: z.string().optional(),
  expose: z.boolean().optional(),
})

/** body-parser's error types (its README, "Errors"), on the table. */
const bodyParserErrors: Partial<Record<string, HttpErrorCode>> = {
  'entity.parse.failed': 'payload_invalid',
  'entity.too.large': 'payload_too_large',
  'parameters.too.many': 'payload_too_large',
  'charset.unsupported': 'unsupported_media_type',
  'encoding.unsupported': 'unsupported_media_type',
}

const byStatus = (status: number): HttpErrorCode =>
  status === 404
    ? 'not_found'
    : status === 413
      ? 'payload_too_large'
      : status === 415
        ? 'unsupported_media_type'
        : 'bad_request'

/**
 * The HttpError any thrown value answers as: itself; a client error from Express or a body parser
 * on the table, keeping its message only when it is marked for the client; anything else
 * `internal`, the original as its cause (for the log).
 */
export function asHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err
  const client = foreignClientErrorSchema.safeParse(err)
  if (!client.success) return new HttpError('internal', undefined, { cause: err })
  const { status, type, message, expose } = client.data
  const code = (type === undefined ? undefined : bodyParserErrors[type]) ?? byStatus(status)
  return new HttpError(code, expose === true ? message : undefined, { cause: err })
}
