/**
 * What the release tests read of the web service's JSON answers and of Discord webhook calls,
 * parsed loosely: only the fields the tests look at are typed, everything else passes through (so
 * `toEqual` still compares whole documents).
 */
import { z } from 'zod'

const apiDocumentSchema = z.looseObject({
  repository: z.string().optional(),
  latest: z.looseObject({ stable: z.string().nullish(), beta: z.string().nullish() }).optional(),
  versions: z.array(z.looseObject({ version: z.string() })).optional(),
  version: z.string().optional(),
  notes: z.string().optional(),
  status: z.string().optional(),
  error: z.looseObject({ code: z.string() }).optional(),
})
export type ApiDocument = z.infer<typeof apiDocumentSchema>

/** A JSON answer of the module API (a module, a release, a manifest, an error). */
export async function apiDocument(res: Response): Promise<ApiDocument> {
  return apiDocumentSchema.parse(await res.json())
}

const manifestSchema = z.looseObject({
  id: z.string().optional(),
  name: z.string().optional(),
  version: z.string(),
  manifest: z.string(),
  download: z.string(),
})
export type ManifestDocument = z.infer<typeof manifestSchema>

/** A module.json as Foundry reads it (served by us, or inside a zip we serve). */
export function manifestDocument(json: unknown): ManifestDocument {
  return manifestSchema.parse(json)
}

/** A JSON object's text, as an object to copy and change. */
export function jsonObject(text: string): Record<string, unknown> {
  return z.record(z.string(), z.unknown()).parse(JSON.parse(text))
}

const forgeablePayloadSchema = z.looseObject({
  repository: z.looseObject({ id: z.number(), full_name: z.string() }),
  release: z.looseObject({ tag_name: z.string(), body: z.string().nullish() }),
})

/**
 * A stand-in delivery's `mutate` that edits the payload's repository and release fields, typed: the
 * edited copy (every other field kept) replaces the payload.
 */
export function forge(edit: (payload: z.infer<typeof forgeablePayloadSchema>) => void) {
  return (payload: Record<string, unknown>) => {
    const forged = forgeablePayloadSchema.parse(payload)
    edit(forged)
    return forged
  }
}

const webhookMessageSchema = z.looseObject({
  embeds: z
    .array(
      z.looseObject({
        title: z.string().optional(),
        fields: z.array(z.looseObject({ name: z.string(), value: z.string() })).optional(),
      })
    )
    .optional(),
})

type Embed = NonNullable<z.infer<typeof webhookMessageSchema>['embeds']>[number]

/** The first embed of a Discord webhook call's body, if it has one. */
export function firstEmbed(body: unknown): Embed | undefined {
  return webhookMessageSchema.safeParse(body).data?.embeds?.[0]
}
