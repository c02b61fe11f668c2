/** The edge's JSON error body (edge/http/errors.ts), parsed: a test reads its code and message. */
import { z } from 'zod'

const errorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) })

export const errorOf = async (res: Response) => errorBodySchema.parse(await res.json()).error

/** A fixture's headers without one of them (e.g. a Content-Length that a new body would contradict). */
export const withoutHeader = (headers: Record<string, string>, name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).filter(([key]) => key.toLowerCase() !== name.toLowerCase()))
