/** The records the registry keeps in its KV bucket, validated with zod on every read. */
import { z } from 'zod'
import { channels, compatibilitySchema, rejectionCodes } from '#shared/releases.ts'

export const versionEntrySchema = z.strictObject({
  version: z.string(),
  channel: z.enum(channels),
  /** Deleted versions leave the listing; their files stay downloadable by URL. */
  status: z.enum(['packaged', 'deleted']),
  repositoryId: z.number().int(),
  releaseId: z.number().int(),
  tag: z.string(),
  releaseUrl: z.string(),
  manifestUrl: z.string(),
  downloadUrl: z.string(),
  compatibility: compatibilitySchema,
  zip: z.strictObject({ object: z.string(), sha256: z.string(), size: z.number().int() }),
  /** sha256 of the stored manifest's JSON text (its ETag). */
  manifestSha256: z.string(),
  packagedAt: z.string(),
  deletedAt: z.string().nullable(),
  /** GitHub's `published_at` of the release (absent in entries written before it was kept). */
  publishedAt: z.string().nullable().optional(),
})
export type VersionEntry = z.infer<typeof versionEntrySchema>

/** One module; every change to it is a compare-and-set of this record (the commit point). */
export const moduleRecordSchema = z.strictObject({
  id: z.string(),
  title: z.string(),
  repositoryId: z.number().int(),
  repository: z.string(),
  latest: z.strictObject({ stable: z.string().nullable(), beta: z.string().nullable() }),
  versions: z.array(versionEntrySchema),
  updatedAt: z.string(),
})
export type ModuleRecord = z.infer<typeof moduleRecordSchema>

export const repositoryBindingSchema = z.strictObject({
  moduleId: z.string(),
  boundAt: z.string(),
})

/** The operator's consent that a repository (by GitHub's id) may publish. */
export const enrollmentSchema = z.strictObject({
  repositoryId: z.number().int(),
  /** `owner/name` as GitHub answered when enrolled (names change; the id does not). */
  repository: z.string(),
  enrolledBy: z.string(),
  enrolledAt: z.string(),
})
export type Enrollment = z.infer<typeof enrollmentSchema>

const repositoryRefSchema = z.strictObject({ id: z.number().int(), name: z.string() })

/** One operator action on the registry, kept for good: who, when, what it changed. */
export const auditRecordSchema = z.strictObject({
  action: z.enum(['enroll', 'unenroll', 'transfer']),
  by: z.string(),
  at: z.string(),
  moduleId: z.string().nullable(),
  from: repositoryRefSchema.nullable(),
  to: repositoryRefSchema.nullable(),
})
export type AuditRecord = z.infer<typeof auditRecordSchema>

/** The stored, rewritten manifest of one release. */
export const manifestRecordSchema = z.strictObject({
  moduleId: z.string(),
  version: z.string(),
  releaseId: z.number().int(),
  /** The manifest JSON text exactly as served. */
  json: z.string(),
  sha256: z.string(),
})
export type ManifestRecord = z.infer<typeof manifestRecordSchema>

export const notesRecordSchema = z.strictObject({
  notes: z.string(),
  releaseId: z.number().int(),
  updatedAt: z.string(),
})
export type NotesRecord = z.infer<typeof notesRecordSchema>

export const rejectionRecordSchema = z.strictObject({
  code: z.enum(rejectionCodes),
  reason: z.string(),
  repositoryId: z.number().int().nullable(),
  releaseId: z.number().int().nullable(),
  tag: z.string().nullable(),
  delivery: z.string().nullable(),
  rejectedAt: z.string(),
})
export type RejectionRecord = z.infer<typeof rejectionRecordSchema>

/**
 * Claim and outcome of one (repository, release, version): `packaging` is a lease held by one
 * worker; `packaged` lists the channels whose `packaged` event was published.
 */
export const releaseRecordSchema = z.strictObject({
  state: z.enum(['packaging', 'packaged', 'rejected']),
  owner: z.string(),
  leaseUntil: z.number(),
  channel: z.enum(channels),
  moduleId: z.string().nullable(),
  announced: z.array(z.enum(channels)),
  code: z.enum(rejectionCodes).nullable(),
  reason: z.string().nullable(),
  delivery: z.string().nullable(),
  updatedAt: z.string(),
})
export type ReleaseRecord = z.infer<typeof releaseRecordSchema>
