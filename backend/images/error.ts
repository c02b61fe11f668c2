/**
 * A refusal or failure with one of the contract's stable codes (shared/images.ts), thrown anywhere
 * between the request and the reply and turned into the error reply in one place.
 */
import { imageErrors, type ImageErrorCode } from '#shared/images.ts'

export class ImageError extends Error {
  override name = 'ImageError'
  readonly code: ImageErrorCode

  constructor(code: ImageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }

  get status(): number {
    return imageErrors[this.code]
  }
}

/** Anything thrown that is not an ImageError is our bug: `internal`, with the detail left to the log. */
export function asImageError(error: unknown): ImageError {
  if (error instanceof ImageError) return error
  return new ImageError('internal', 'internal error', { cause: error })
}
