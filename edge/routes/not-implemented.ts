/** Routes of the architecture whose capability lands in a later issue: a 501 in the JSON error format. */
import type { Handler } from 'hono'
import type { AppEnv } from '../env.ts'
import { errorResponse } from '../errors.ts'

export const notImplemented =
  (capability: string): Handler<AppEnv> =>
  (c) =>
    errorResponse(c, 501, 'not_implemented', `${capability} is not available yet`)
