/**
 * Every error a backend service answers over HTTP, as data: a stable code, its status, and the
 * message sent unless the thrower says more. A route throws `new HttpError(code, message?)`; the
 * one error handler (http.ts) renders it as `{ "error": { "code", "message" } }`.
 *
 * The web service is the only service with public routes, so its codes live here beside the
 * runtime's own; the edge passes them through to clients unchanged, so a code, once published,
 * keeps its meaning.
 */

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
  not_found: { status: 404, message: 'no such route' },
  /** An unexpected failure: the detail goes to the log, never to the client. */
  internal: { status: 500, message: 'internal error' },

  // The web service (web/origin-proof.ts, web/modules-api.ts).
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
