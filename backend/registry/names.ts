/**
 * What a module id and a version may look like in the registry, and how they become KV keys and
 * object names. Both come from untrusted manifests and URLs, so they are validated before use.
 */
import { z } from 'zod'

/** Foundry ids: lower-case letters, digits, hyphens (underscores seen in the wild), at most 100 characters. */
export const moduleIdSchema = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9_])?$/, 'must be lower-case letters, digits, "-" or "_"')

/**
 * Versions we serve: start with a digit, then letters, digits and `.`, `-`, `_`, `+`, no empty
 * dot-separated part; at most 64 characters. ("VERSION" or "#{VERSION}#" template placeholders fail.)
 */
export const versionSchema = z
  .string()
  .max(64)
  .regex(/^\d[0-9A-Za-z_+-]*(?:\.[0-9A-Za-z_+-]+)*$/, 'must start with a digit and be dot-separated parts')

export const isModuleId = (s: string) => moduleIdSchema.safeParse(s).success
export const isVersion = (s: string) => versionSchema.safeParse(s).success

/** A version as one KV key token: characters KV keys do not allow (`+`), and `.`, as `=XX`. */
export function versionToken(version: string): string {
  return version.replace(
    /[^A-Za-z0-9_-]/g,
    (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`
  )
}

export const registryKeys = {
  /** ModuleRecord: the commit point of every change to a module. */
  module: (id: string) => `module.${id}`,
  modulePrefix: 'module.',
  /** Which module id a repository publishes (set by its first packaged release; moved only by `transfer`). */
  repository: (repositoryId: number) => `repo.${repositoryId}`,
  /** The operator enrolled this repository: only enrolled repositories publish. */
  enrolled: (repositoryId: number) => `enrolled.${repositoryId}`,
  /** An operator action (enroll, transfer), keyed by time so the keys list in order. */
  audit: (at: Date, id: string) => `audit.${at.toISOString().replace(/[^0-9]/g, '')}.${id}`,
  /** A rejection notice was published for (repository, release, version, code): never again. */
  notice: (repositoryId: number, releaseId: number, version: string, code: string) =>
    `notice.${repositoryId}.${releaseId}.${versionToken(version)}.${code}`,
  /** ReleaseRecord: claim and outcome of one (repository, release, version). */
  release: (repositoryId: number, releaseId: number, version: string) =>
    `release.${repositoryId}.${releaseId}.${versionToken(version)}`,
  /** The rewritten manifest of one packaged release (immutable). */
  manifest: (id: string, version: string, releaseId: number) =>
    `manifest.${id}.${versionToken(version)}.${releaseId}`,
  /** Release notes of a version (the release body; `edited` replaces it). */
  notes: (id: string, version: string) => `notes.${id}.${versionToken(version)}`,
  /** The last rejection of a version, for GET /api/modules/<id>/releases/<version>. */
  rejection: (id: string, version: string) => `rejection.${id}.${versionToken(version)}`,
} as const

/** Object name of a stored zip; per release, so two releases can never write the same object. */
export const zipObjectName = (id: string, version: string, releaseId: number) =>
  `${id}/${version}/${releaseId}/module.zip`
