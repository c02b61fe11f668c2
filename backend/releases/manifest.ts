/**
 * Foundry module manifests (module.json): validation of the v10+ fields we rely on, tolerant of the
 * legacy fields real manifests still carry (`name`, `author`, `minimumCoreVersion`,
 * `compatibleCoreVersion`, `dependencies`, `systems`, `library: "false"`), and the rewrite of
 * `manifest`/`download` to our URLs. Every other field is kept exactly as the author wrote it.
 */
import { z } from 'zod'
import type { Compatibility } from '#shared/releases.ts'
import { moduleIdSchema, versionSchema } from '../registry/names.ts'
import { Rejection } from './errors.ts'

const coreVersion = z.union([z.string().max(64), z.number()])
const compatibility = z.strictObject({
  minimum: coreVersion.nullish(),
  verified: coreVersion.nullish(),
  maximum: coreVersion.nullish(),
})
const path = z.string().min(1).max(2048)
const relatedPackage = z.looseObject({
  id: z.string().min(1).max(100),
  type: z.enum(['module', 'system', 'world']).optional(),
  manifest: z.string().max(2048).optional(),
  compatibility: compatibility.optional(),
  reason: z.string().optional(),
})

export const manifestSchema = z
  .looseObject({
    id: z.string().optional(),
    /** Before v10 the id was `name`. */
    name: z.string().optional(),
    title: z.string().trim().min(1, 'must not be empty').max(1000),
    description: z.string().optional(),
    version: z.union([z.string(), z.number()]),
    compatibility: compatibility.optional(),
    minimumCoreVersion: coreVersion.optional(),
    compatibleCoreVersion: coreVersion.optional(),
    authors: z.array(z.looseObject({ name: z.string().min(1).max(200) })).optional(),
    author: z.string().optional(),
    esmodules: z.array(path).optional(),
    scripts: z.array(path).optional(),
    styles: z.array(path).optional(),
    languages: z.array(z.looseObject({ lang: z.string().min(1), path })).optional(),
    packs: z.array(z.looseObject({ name: z.string().min(1) })).optional(),
    relationships: z
      .looseObject({
        systems: z.array(relatedPackage).optional(),
        requires: z.array(relatedPackage).optional(),
        recommends: z.array(relatedPackage).optional(),
        conflicts: z.array(relatedPackage).optional(),
      })
      .optional(),
    manifest: z.string().optional(),
    download: z.string().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.id === undefined && m.name === undefined)
      ctx.addIssue({ code: 'custom', path: ['id'], message: 'required' })
  })

export interface ValidManifest {
  id: string
  title: string
  version: string
  compatibility: Compatibility
  /** The manifest as the author wrote it (all fields). */
  raw: Record<string, unknown>
}

const text = (v: string | number | null | undefined) =>
  v === undefined || v === null || v === '' ? null : String(v)

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ')
}

/** Validates manifest JSON text (or bytes); a Rejection names the first problems. */
export function validateManifest(input: Uint8Array | string, where = 'module.json'): ValidManifest {
  let data: unknown
  try {
    data = JSON.parse(
      typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input)
    )
  } catch {
    throw new Rejection('manifest_invalid', `${where} is not valid JSON`)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new Rejection('manifest_invalid', `${where} is not a JSON object`)
  const parsed = manifestSchema.safeParse(data)
  if (!parsed.success) throw new Rejection('manifest_invalid', `${where}: ${describe(parsed.error)}`)
  const m = parsed.data
  const id = (m.id ?? m.name)!
  const idCheck = moduleIdSchema.safeParse(id)
  if (!idCheck.success)
    throw new Rejection(
      'manifest_invalid',
      `${where}: id "${id.slice(0, 100)}" ${idCheck.error.issues[0]!.message}`
    )
  const version = String(m.version)
  const versionCheck = versionSchema.safeParse(version)
  if (!versionCheck.success)
    throw new Rejection(
      'manifest_invalid',
      `${where}: version "${version.slice(0, 64)}" ${versionCheck.error.issues[0]!.message}`
    )
  return {
    id,
    title: m.title.trim(),
    version,
    compatibility: {
      minimum: text(m.compatibility?.minimum ?? m.minimumCoreVersion),
      verified: text(m.compatibility?.verified ?? m.compatibleCoreVersion),
      maximum: text(m.compatibility?.maximum),
    },
    raw: data as Record<string, unknown>,
  }
}

/** The URLs a module's files get on the platform. */
export function moduleUrls(publicBaseUrl: string, id: string, version: string) {
  const base = publicBaseUrl.replace(/\/+$/, '')
  return {
    manifest: `${base}/modules/${id}/module.json`,
    betaManifest: `${base}/modules/${id}/beta/module.json`,
    download: `${base}/modules/${id}/${encodeURIComponent(version)}/module.zip`,
  }
}

/**
 * The manifest with `manifest` pointing at the stable channel (Foundry's update check follows it)
 * and `download` at this version's zip; key order kept, new keys appended.
 */
export function rewriteManifest(
  raw: Record<string, unknown>,
  urls: { manifest: string; download: string }
): string {
  return `${JSON.stringify({ ...raw, manifest: urls.manifest, download: urls.download }, null, 2)}\n`
}
