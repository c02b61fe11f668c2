/**
 * Decoding NATS messages at the boundary: JSON parsed and validated against a shared schema.
 * Never throws: an exception inside a subscription callback would take the subscription down.
 */
import type { z } from 'zod'

export type Decoded<T> = { ok: true; value: T } | { ok: false; message: string }

/** A core NATS message or a JetStream one: both read their body with `string()`. */
export function decodeMessage<S extends z.ZodType>(
  msg: { string(): string },
  schema: S
): Decoded<z.infer<S>> {
  let data: unknown
  try {
    data = JSON.parse(msg.string())
  } catch {
    return { ok: false, message: 'not JSON' }
  }
  const parsed = schema.safeParse(data)
  if (!parsed.success)
    return {
      ok: false,
      message: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
    }
  return { ok: true, value: parsed.data }
}
