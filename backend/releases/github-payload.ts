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
  const d = (typeof data === 'object' && data !== null ? data : {}) as Record<string, any>
  const partial: Partial<{ repositoryId: number; releaseId: number; tag: string }> = {}
  if (Number.isSafeInteger(d.repository?.id) && d.repository.id > 0) partial.repositoryId = d.repository.id
  if (Number.isSafeInteger(d.release?.id) && d.release.id > 0) partial.releaseId = d.release.id
  if (typeof d.release?.tag_name === 'string') partial.tag = d.release.tag_name.slice(0, 255)
  return { ok: false, reason: `the payload is not a release event: ${reason}`, partial }
}
