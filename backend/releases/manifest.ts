/**
 * Foundry module manifests (module.json): validation of the v10+ fields we rely on, tolerant of the
 * legacy fields real manifests still carry (`name`, `author`, `minimumCoreVersion`,
 * `compatibleCoreVersion`, `dependencies`, `systems`, `library: "false"`), and the rewrite of
 * `manifest`/`download` to our URLs. Every other field is kept exactly as the author wrote it.
 *
 * Bounded: JSON nested deeper than MAX_MANIFEST_DEPTH is refused (`manifest_too_deep`) by a scan
 * of the text before it is parsed, and a manifest whose pretty-printed form (what we serve) would
 * pass MAX_SERVED_MANIFEST_BYTES is refused (`manifest_too_large`) from a size computed on its
 * compact form, before the pretty string is built: pretty-printing multiplies deep nesting (a
 * 120 KB nested array became 360 MB).
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

/** Arrays and objects within arrays and objects; real manifests stay under 10. */
export const MAX_MANIFEST_DEPTH = 32
/** The largest module.json we serve, pretty-printed with our URLs in it. */
export const MAX_SERVED_MANIFEST_BYTES = 256 * 1024

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d

/**
 * Whether JSON text nests arrays and objects deeper than `limit`; stops at the first level past
 * it. Brackets inside strings do not count. Only exact for valid JSON, which is all that is
 * parsed after it.
 */
export function nestsDeeperThan(json: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) inString = true
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > limit) return true
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--
  }
  return false
}

/**
 * The UTF-8 size of `JSON.stringify(value, null, 2)` given `JSON.stringify(value)`: the same
 * tokens plus a newline and indentation after each opening bracket of a non-empty container,
 * before each closing one and after each comma, and a space after each colon.
 */
export function prettyJsonBytes(compact: string): number {
  let extra = 0
  let depth = 0
  let inString = false
  for (let i = 0; i < compact.length; i++) {
    const c = compact.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) inString = true
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      const next = compact.charCodeAt(i + 1)
      if (next === CLOSE_ARRAY || next === CLOSE_OBJECT) i++
      else extra += 1 + 2 * ++depth
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) extra += 1 + 2 * --depth
    else if (c === COMMA) extra += 1 + 2 * depth
    else if (c === COLON) extra += 1
  }
  return Buffer.byteLength(compact) + extra
}

/** A Rejection when `value` pretty-printed (as we serve it) would pass MAX_SERVED_MANIFEST_BYTES. */
function checkServedSize(value: Record<string, unknown>, what: string): void {
  const size = prettyJsonBytes(JSON.stringify(value)) + 1
  if (size > MAX_SERVED_MANIFEST_BYTES)
    throw new Rejection(
      'manifest_too_large',
      `${what} would be ${size} bytes pretty-printed, more than the limit of ${MAX_SERVED_MANIFEST_BYTES}`
    )
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
  let json: string
  try {
    json = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input)
  } catch {
    throw new Rejection('manifest_invalid', `${where} is not valid JSON`)
  }
  if (nestsDeeperThan(json, MAX_MANIFEST_DEPTH))
    throw new Rejection(
      'manifest_too_deep',
      `${where} nests arrays and objects more than ${MAX_MANIFEST_DEPTH} levels deep`
    )
  let data: unknown
  try {
    data = JSON.parse(json)
  } catch {
    throw new Rejection('manifest_invalid', `${where} is not valid JSON`)
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new Rejection('manifest_invalid', `${where} is not a JSON object`)
  // Early, before the zip is downloaded: the rewrite changes only two URLs.
  checkServedSize(data as Record<string, unknown>, where)
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
 * and `download` at this version's zip; key order kept, new keys appended. A Rejection
 * (`manifest_too_large`) when it would pass MAX_SERVED_MANIFEST_BYTES.
 */
export function rewriteManifest(
  raw: Record<string, unknown>,
  urls: { manifest: string; download: string }
): string {
  const rewritten = { ...raw, manifest: urls.manifest, download: urls.download }
  checkServedSize(rewritten, 'the rewritten module.json')
  return `${JSON.stringify(rewritten, null, 2)}\n`
}
