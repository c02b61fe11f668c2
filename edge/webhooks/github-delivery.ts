/**
 * Reading a GitHub webhook delivery safely: headers checked before anything is parsed, the body
 * read with a size cap, the signature verified over the raw bytes (X-Hub-Signature-256, with
 * @octokit/webhooks-methods' WebCrypto build, a constant-time compare).
 */
import { verify } from '@octokit/webhooks-methods'
import type { ErrorCode } from '../http/errors.ts'

/** GitHub sends at most 25 MB; what we queue must fit a NATS message (8 MiB max_payload), so less. */
export const MAX_DELIVERY_BYTES = 8 * 1024 * 1024 - 64 * 1024

export interface DeliveryHeaders {
  event: string
  delivery: string
  signature: string
  hookId: string | undefined
}

/** Why a delivery is refused before its signature is checked; the status is the code's (http/errors.ts). */
export interface DeliveryProblem {
  code: Extract<ErrorCode, 'signature_missing' | 'headers_invalid' | 'payload_too_large'>
  message: string
}

const SIGNATURE = /^sha256=[0-9a-f]{64}$/
const DELIVERY_ID = /^[A-Za-z0-9-]{1,64}$/
const EVENT = /^[a-z_]{1,64}$/

export function deliveryHeaders(headers: Headers): DeliveryHeaders | DeliveryProblem {
  const event = headers.get('x-github-event') ?? ''
  const delivery = headers.get('x-github-delivery') ?? ''
  const signature = headers.get('x-hub-signature-256') ?? ''
  if (!SIGNATURE.test(signature))
    return {
      code: 'signature_missing',
      message: 'X-Hub-Signature-256 must be sha256=<64 hex digits>',
    }
  if (!EVENT.test(event))
    return { code: 'headers_invalid', message: 'X-GitHub-Event is missing or malformed' }
  if (!DELIVERY_ID.test(delivery))
    return { code: 'headers_invalid', message: 'X-GitHub-Delivery is missing or malformed' }
  return { event, delivery, signature, hookId: headers.get('x-github-hook-id') ?? undefined }
}

/** The body as bytes, refusing (without reading it all) anything over the cap. */
export async function readCapped(request: Request): Promise<Uint8Array | DeliveryProblem> {
  const tooLarge: DeliveryProblem = {
    code: 'payload_too_large',
    message: `deliveries over ${MAX_DELIVERY_BYTES} bytes are refused`,
  }
  const declared = Number(request.headers.get('content-length') ?? NaN)
  if (declared > MAX_DELIVERY_BYTES) return tooLarge
  if (!request.body) return new Uint8Array()
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = bytesReader(request.body)
  for (;;) {
    const read = await reader.read()
    if (read.done) break
    const value = read.value
    // A request body's chunks are always bytes in the Workers runtime.
    if (!(value instanceof Uint8Array)) throw new TypeError('a request body chunk is not bytes')
    size += value.length
    if (size > MAX_DELIVERY_BYTES) {
      await reader.cancel()
      return tooLarge
    }
    chunks.push(value)
  }
  const body = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    body.set(chunk, offset)
    offset += chunk.length
  }
  return body
}

const bytesReader = (body: ReadableStream<unknown>) => body.getReader()

export async function signatureValid(secret: string, body: Uint8Array, signature: string): Promise<boolean> {
  if (body.length === 0) return false
  try {
    // GitHub signs the bytes; valid UTF-8 decodes and re-encodes to the same bytes, anything else fails.
    return await verify(secret, new TextDecoder().decode(body), signature)
  } catch {
    return false
  }
}
