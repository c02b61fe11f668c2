/**
 * What went wrong, in words, from whatever was thrown: an Error's message, or the value itself.
 * `fetch()` rejects with a bare "fetch failed" whose cause says why (connect ECONNREFUSED, a
 * timeout); `fetchFailure` reports that cause. `errnoCode`: a system error's code.
 */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

export function fetchFailure(error: unknown): string {
  return error instanceof Error && error.cause !== undefined ? errorMessage(error.cause) : errorMessage(error)
}

/** A system error's code (ENOENT, EACCES), if it has one. */
export function errnoCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined
}
