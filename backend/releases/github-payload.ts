/**
 * The GitHub `release` webhook payload, as far as the pipeline reads it. Tolerant of what GitHub
 * adds; strict on what we use. `name`/`body` may be null in GitHub's own examples.
 *
 * Only three numbers are taken from it: `installation.id` (whose token reads GitHub),
 * `repository.id` and `release.id`. Everything else (names, tag, notes, flags) is read back from
 * GitHub's API (confirm.ts); the rest is parsed for logs and for naming a refusal.
 */
import { z } from 'zod'

export const repositoryFullNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/, 'must be owner/name')
  .refine((s) => !s.split('/').some((part) => part === '.' || part === '..'), 'must be owner/name')

export const releasePayloadSchema = z.object({
  action: z.string().min(1).max(64),
  release: z.object({
    id: z.number().int().positive(),
    tag_name: z.string().min(1).max(255),
    name: z.string().nullish(),
    body: z.string().nullish(),
    draft: z.boolean(),
    prerelease: z.boolean(),
    html_url: z.url(),
    published_at: z.string().nullish(),
    author: z.object({ login: z.string().max(100) }).nullish(),
  }),
  repository: z.object({
    id: z.number().int().positive(),
    full_name: repositoryFullNameSchema,
  }),
  /** Present in every GitHub App delivery; absent from a repository webhook's. */
  installation: z.object({ id: z.number().int().positive() }).nullish(),
})
export type ReleasePayload = z.infer<typeof releasePayloadSchema>

export type ParsedPayload =
  | { ok: true; payload: ReleasePayload }
  | { ok: false; reason: string; partial: Partial<{ repositoryId: number; releaseId: number; tag: string }> }

/** The identifying fields of any JSON value: each one that is not what it should be is left out. */
const identifyingSchema = z
  .object({
    repository: z
      .object({ id: z.number().int().positive().optional().catch(undefined) })
      .optional()
      .catch(undefined),
    release: z
      .object({
        id: z.number().int().positive().optional().catch(undefined),
        tag_name: z.string().optional().catch(undefined),
      })
      .optional()
      .catch(undefined),
  })
  .catch({})

/** Parses the raw delivery bytes; never throws. */
export function parseReleasePayload(bytes: Uint8Array): ParsedPayload {
  let data: unknown
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return { ok: false, reason: 'the delivery body is not JSON', partial: {} }
  }
  const parsed = releasePayloadSchema.safeParse(data)
  if (parsed.success) return { ok: true, payload: parsed.data }
  const reason = parsed.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ')
  // Whatever identifies the release is kept, so the rejection can still name it.
  const known = identifyingSchema.parse(data)
  const partial: Partial<{ repositoryId: number; releaseId: number; tag: string }> = {}
  if (known.repository?.id !== undefined) partial.repositoryId = known.repository.id
  if (known.release?.id !== undefined) partial.releaseId = known.release.id
  if (known.release?.tag_name !== undefined) partial.tag = known.release.tag_name.slice(0, 255)
  return { ok: false, reason: `the payload is not a release event: ${reason}`, partial }
}
