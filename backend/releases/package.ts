/**
 * Packaging one release (`published`, `released`, `prereleased`), as GitHub serves it (confirm.ts:
 * repository name, tag, notes, flags and assets are GitHub's answer, never the payload's): claim it, find out what the
 * registry already has, fetch and check the release's manifest and zip, rewrite both to our URLs,
 * store them, commit the version, publish `packaged`. Exactly once per (repository, release,
 * version, channel), whatever the redeliveries, duplicate events, crashes and concurrent workers:
 *
 *   - the claim (claim.ts) keeps two workers from doing the same work at once; lease.ts renews it
 *     while the run works and writes its outcome once renewal has stopped;
 *   - artifacts are written under per-release names before the commit, so retrying rewrites them;
 *   - the module record's compare-and-set is the commit (registry/writer.ts): it re-checks every
 *     rule and tells a replay that this release is `already` there;
 *   - `packaged` is published with a deterministic message id, then marked in the release record;
 *     a crash between the two publishes again and the stream drops the duplicate;
 *   - a release older (GitHub's `published_at`) than the channel's latest, that the registry never
 *     held, is a late replay: it changes nothing and announces nothing;
 *   - per-repository quotas (stored zip bytes, versions) are checked before anything is stored;
 *   - the module record is read once, while the claim is taken: step 1 judges the release by it,
 *     the quota counts it and the commit's compare-and-set starts from it (a record that moved
 *     on since costs one more read); a claim taken over from another run reads it again.
 *
 * The run is a sequence of steps, each returning either what the next step needs or the run's
 * Verdict; `settle` acts on the verdict under the lease, and `packageRelease` finishes what comes
 * after the claim is written (cache purge, the rejection's event).
 *
 *   step                      may end the run with
 *   1 registryVerdict         announce (duplicate, promoted), deleted, stale, rejected
 *   2 fetchManifest           rejected (asset, manifest), then checkManifest's verdicts
 *   3 fetchZip                rejected (asset, zip, zip_manifest_mismatch), checkManifest's verdicts
 *   4 store                   rejected (manifest_too_large, quota_exceeded)
 *   5 commit                  announce (packaged, promoted, duplicate), deleted, rejected (+ clean-up)
 *
 * Transient failures (ours, GitHub's, NATS's) are thrown: the claim is given up and the delivery
 * retried.
 */
import { createHash } from 'node:crypto'
import type { JetStreamClient } from '@nats-io/jetstream'
import { NOTES_EXCERPT_MAX, type Channel } from '#shared/releases.ts'
import type { Logger } from '../runtime/logger.ts'
import { versionFromTag } from '../registry/foundry-version.ts'
import { isVersion, registryKeys, zipObjectName } from '../registry/names.ts'
import type { ModuleRecord, VersionEntry } from '../registry/records.ts'
import { decide, type Candidate } from '../registry/version-rules.ts'
import type { Versioned } from '../registry/kv-store.ts'
import type { RegistryWriter } from '../registry/writer.ts'
import { downloadAsset, manifestAsset, zipAsset, type AssetLimits } from './assets.ts'
import type { Claim, ReleaseClaims } from './claim.ts'
import { Rejection } from './errors.ts'
import { publishPackaged } from './events.ts'
import type { GitHubApp, GitHubRelease, ReleaseAsset } from './github-api.ts'
import { withLease, type LeaseEnd } from './lease.ts'
import { moduleUrls, rewriteManifest, validateManifest, type ValidManifest } from './manifest.ts'
import type { ReleaseMetrics } from './metrics.ts'
import { modulePurgePaths } from './purge.ts'
import { announceRejection } from './rejections.ts'
import type { WorkItem } from '../runtime/work-queue.ts'
import {
  findManifestEntry,
  readZip,
  rewriteZip,
  verifyEntries,
  ZipError,
  type ZipEntry,
  type ZipLimits,
} from './zip.ts'

export interface PackagerDeps {
  js: JetStreamClient
  registry: RegistryWriter
  claims: ReleaseClaims
  github: GitHubApp
  assets: AssetLimits
  limits: {
    maxManifestBytes: number
    maxZipBytes: number
    zip: ZipLimits
    /** Per repository: bytes of stored zips, number of versions. */
    quota: { maxBytes: number; maxVersions: number }
  }
  publicBaseUrl: string
  log: Logger
  metrics: ReleaseMetrics
  /** Paths whose edge cache should be purged (best effort, after the fact). */
  changed(paths: string[]): void
}

/** A release confirmed with GitHub: every field here is GitHub's answer (or GitHub's id). */
export interface ReleaseToPackage {
  repositoryId: number
  /** `owner/name`, as GitHub names the repository now. */
  repository: string
  release: GitHubRelease
  installationId: number
  delivery: string | null
  channel: Channel
}

export type PackageOutcome = 'packaged' | 'promoted' | 'duplicate' | 'rejected' | 'ignored' | 'stale'

/** How a run ends. */
type Verdict =
  /** The registry holds this release (now, or already): announce it once. */
  | {
      kind: 'announce'
      outcome: 'packaged' | 'promoted' | 'duplicate'
      moduleId: string
      record: ModuleRecord
    }
  /** The registry deleted this release's version: a late event changes nothing. */
  | { kind: 'deleted'; moduleId: string }
  /** A late replay of a release older than the channel's latest: recorded as refused, quietly. */
  | { kind: 'stale'; reason: string; moduleId: string | null }
  /** Refused, recorded under `moduleId`; `stored` artifacts (written before a refused commit) go. */
  | { kind: 'rejected'; rejection: Rejection; moduleId: string | null; stored: StoredZip | null }

/** A step's result for the next step, or the verdict that ends the run. */
type Step<T> = { ok: true; value: T } | { ok: false; verdict: Verdict }

/**
 * What the registry says of the repository as the run starts: the module it is bound to, and that
 * module's record (null when it has none yet). The record is the starting point of the quota check
 * and the commit's compare-and-set, so the run reads it once.
 */
interface RegistryView {
  bound: string | null
  module: Versioned<ModuleRecord> | null
}

/** The module ids known when a refusal happens: they decide where it is recorded. */
interface Known {
  /** The module this repository is bound to (the registry's, before the run), or null. */
  bound: string | null
  /** The id of the module.json being checked, once it has been read. */
  manifestId: string | null
}

/** What a run works with; nothing in it changes. */
interface Run {
  deps: PackagerDeps
  ev: ReleaseToPackage
  version: string
  /** Keeps the delivery's ack timer from running out during long downloads and checks. */
  keepAlive: () => void
}

/** The zip's entries, its module.json entry, and that module.json. */
interface InspectedZip {
  name: string
  bytes: Uint8Array
  entries: ZipEntry[]
  entry: ZipEntry
  manifest: ValidManifest
}

/** A zip and manifest stored under this release's own names, not yet committed. */
interface StoredZip {
  object: string
  moduleId: string
  zip: { sha256: string; size: number }
  manifestSha256: string
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex')

export async function packageRelease(
  deps: PackagerDeps,
  ev: ReleaseToPackage,
  item: WorkItem
): Promise<PackageOutcome> {
  const tag = ev.release.tag_name
  const version = versionFromTag(tag)
  if (!isVersion(version)) {
    await announceRejection(
      deps,
      ev,
      { moduleId: null, version },
      new Rejection(
        'version_tag_mismatch',
        `the tag "${tag.slice(0, 100)}" is not a version (expected v1.2.3 or 1.2.3)`
      )
    )
    return 'rejected'
  }
  const keepAlive = () => item.keepAlive()
  const key = registryKeys.release(ev.repositoryId, ev.release.id, version)
  // The registry is read while the claim is taken: the run needs both, and neither needs the other.
  const [acquired, early] = await Promise.allSettled([
    deps.claims.acquire(
      key,
      { channel: ev.channel, delivery: ev.delivery },
      keepAlive,
      deps.claims.leaseMs * 3
    ),
    readRegistry(deps.registry, ev.repositoryId),
  ])
  if (acquired.status === 'rejected') throw acquired.reason
  if (acquired.value.kind === 'done') return 'duplicate'
  const { claim, first } = acquired.value
  const run: Run = { deps, ev, version, keepAlive }
  const started = performance.now()

  const verdict = await withLease(deps.claims, claim, async () => {
    // A claim taken over may follow a run of this release that changed the registry meanwhile; a
    // failed early read is tried again under the lease (whose failure gives the claim back).
    const view =
      first && early.status === 'fulfilled' ? early.value : await readRegistry(deps.registry, ev.repositoryId)
    return settle(run, claim, await packagingVerdict(run, view))
  })

  // The claim holds the outcome now; what remains is telling others.
  switch (verdict.kind) {
    case 'announce':
      if (verdict.outcome !== 'duplicate') {
        deps.changed(modulePurgePaths(verdict.moduleId))
        deps.metrics.packagingSeconds.observe((performance.now() - started) / 1000)
      }
      return verdict.outcome
    case 'deleted':
      return 'ignored'
    case 'stale':
      deps.log.info(
        { repositoryId: ev.repositoryId, release: ev.release.id, version, reason: verdict.reason },
        'stale release ignored'
      )
      return 'stale'
    case 'rejected':
      await announceRejection(deps, ev, { moduleId: verdict.moduleId, version }, verdict.rejection)
      return 'rejected'
  }
}

/** The repository's module and that module's record, as the registry holds them now. */
async function readRegistry(registry: RegistryWriter, repositoryId: number): Promise<RegistryView> {
  const bound = await registry.repositoryModule(repositoryId)
  return { bound, module: bound ? await registry.getModule(bound) : null }
}

/** Steps 1-5: what the registry, GitHub's assets and the commit say about this release. */
async function packagingVerdict(run: Run, view: RegistryView): Promise<Verdict> {
  const { bound } = view

  // 1. What the registry already knows: a replay or a promotion needs no download.
  if (bound) {
    const verdict = await registryVerdict(run, bound, view.module?.value ?? null, { bound, manifestId: null })
    if (verdict) return verdict
  }

  // 2. The release's own module.json, when it has one (checked before the big download).
  const read = await fetchManifest(run, bound)
  if (!read.ok) return read.verdict
  const { token, manifest } = read.value

  // 3. The zip: checked entry by entry, its module.json must agree.
  const zip = await fetchZip(run, token, bound, manifest)
  if (!zip.ok) return zip.verdict
  const chosen = manifest ?? zip.value.manifest
  const known: Known = { bound, manifestId: chosen.id }

  // The record read at step 1 is this module's only if the repository was bound to it.
  const seen = bound === chosen.id ? view.module : undefined

  // 4. Rewrite to our URLs, check the quota, store under this release's own names.
  const stored = await store(run, known, chosen, zip.value, seen)
  if (!stored.ok) return stored.verdict

  // 5. Commit: the module record's compare-and-set decides, atomically across workers.
  return commit(run, known, chosen, stored.value, seen)
}

/** The installation's token, and the release's module.json asset (checked), if it has one. */
async function fetchManifest(
  run: Run,
  bound: string | null
): Promise<Step<{ token: string; manifest: ValidManifest | null }>> {
  const { deps, ev } = run
  const read = await refusable({ bound, manifestId: null }, async () => {
    const token = await deps.github.installationToken(ev.installationId)
    const file = manifestAsset(ev.release.assets)
    if (!file) return { token, manifest: null }
    const bytes = await download(run, file, deps.limits.maxManifestBytes, token)
    return { token, manifest: validateManifest(bytes, 'module.json (release asset)') }
  })
  if (!read.ok || !read.value.manifest) return read
  const verdict = await checkManifest(run, read.value.manifest, bound)
  return verdict ? stop(verdict) : read
}

/** The zip asset, inspected; its module.json agrees with the release's (or is checked as the manifest). */
async function fetchZip(
  run: Run,
  token: string,
  bound: string | null,
  manifest: ValidManifest | null
): Promise<Step<InspectedZip>> {
  const { deps, ev } = run
  const known: Known = { bound, manifestId: manifest?.id ?? null }
  const read = await refusable(known, async () => {
    const file = zipAsset(ev.release.assets, manifest?.id ?? bound)
    const bytes = await download(run, file, deps.limits.maxZipBytes, token)
    return inspectZip(run, bytes, file.name)
  })
  if (!read.ok) return read
  const zip = read.value
  if (manifest) {
    if (zip.manifest.id === manifest.id && zip.manifest.version === manifest.version) return read
    return stop(
      refused(
        new Rejection(
          'zip_manifest_mismatch',
          `module.json in ${zip.name} says ${zip.manifest.id} ${zip.manifest.version}, the release's module.json says ${manifest.id} ${manifest.version}`
        ),
        known
      )
    )
  }
  const verdict = await checkManifest(run, zip.manifest, bound)
  return verdict ? stop(verdict) : read
}

/** Rewrites the manifest and the zip to our URLs and stores both under this release's own names. */
async function store(
  run: Run,
  known: Known,
  manifest: ValidManifest,
  zip: InspectedZip,
  seen: Versioned<ModuleRecord> | null | undefined
): Promise<Step<StoredZip>> {
  const { deps, ev, version } = run
  const moduleId = manifest.id
  const rewritten = await refusable(known, () => {
    const urls = moduleUrls(deps.publicBaseUrl, moduleId, version)
    const manifestJson = rewriteManifest(manifest.raw, urls)
    const zipManifestJson = manifest === zip.manifest ? manifestJson : rewriteManifest(zip.manifest.raw, urls)
    return { manifestJson, zip: rewriteZip(zip.bytes, zip.entries, zip.entry, Buffer.from(zipManifestJson)) }
  })
  if (!rewritten.ok) return rewritten
  const { manifestJson } = rewritten.value
  const bytes = rewritten.value.zip
  const record = seen === undefined ? await deps.registry.getModule(moduleId) : seen
  const overQuota = quotaRefusal(run, record?.value ?? null, bytes.length)
  if (overQuota) return stop(refused(overQuota, known))
  const object = zipObjectName(moduleId, version, ev.release.id)
  const manifestSha256 = sha256(manifestJson)
  // Two writes under this release's own names, neither read before the commit: at once.
  await Promise.all([
    deps.registry.putZip(object, bytes),
    deps.registry.putManifest({
      moduleId,
      version,
      releaseId: ev.release.id,
      json: manifestJson,
      sha256: manifestSha256,
    }),
  ])
  run.keepAlive()
  return {
    ok: true,
    value: { object, moduleId, zip: { sha256: sha256(bytes), size: bytes.length }, manifestSha256 },
  }
}

/**
 * Binds the repository (first release) and commits the version, from the record the run has seen
 * when it has one; a refusal takes the stored files back.
 */
async function commit(
  run: Run,
  known: Known,
  manifest: ValidManifest,
  stored: StoredZip,
  seen: Versioned<ModuleRecord> | null | undefined
): Promise<Verdict> {
  const { deps, ev, version } = run
  const { moduleId } = stored
  // Bound already (read at step 1, checked against the manifest): bindings never change.
  if (known.bound !== moduleId) {
    const binding = await deps.registry.bindRepository(ev.repositoryId, moduleId)
    if (!binding.ok) return refused(idMismatch(moduleId, binding.boundTo), known, stored)
  }
  const urls = moduleUrls(deps.publicBaseUrl, moduleId, version)
  const entry: VersionEntry = {
    version,
    channel: ev.channel,
    status: 'packaged',
    repositoryId: ev.repositoryId,
    releaseId: ev.release.id,
    tag: ev.release.tag_name,
    releaseUrl: ev.release.html_url,
    manifestUrl: urls.manifest,
    downloadUrl: urls.download,
    compatibility: manifest.compatibility,
    zip: { object: stored.object, ...stored.zip },
    manifestSha256: stored.manifestSha256,
    packagedAt: new Date().toISOString(),
    deletedAt: null,
    publishedAt: ev.release.published_at ?? null,
  }
  const result = await deps.registry.commitVersion(
    { moduleId, title: manifest.title, repository: ev.repository, entry },
    seen
  )
  switch (result.outcome) {
    case 'rejected':
      return refused(new Rejection(result.code, result.reason), { ...known, bound: moduleId }, stored)
    // From here on the artifacts are the registry's (ours, or an identical replay's): never clean them up.
    case 'deleted':
      return { kind: 'deleted', moduleId }
    case 'committed':
      return { kind: 'announce', outcome: 'packaged', moduleId, record: result.record }
    case 'promoted':
      return { kind: 'announce', outcome: 'promoted', moduleId, record: result.record }
    case 'already':
      return { kind: 'announce', outcome: 'duplicate', moduleId, record: result.record }
  }
}

/**
 * What the registry (`record`: `moduleId`'s record, null when it has none) says about this release;
 * null when it must be packaged.
 */
async function registryVerdict(
  run: Run,
  moduleId: string,
  record: ModuleRecord | null,
  known: Known
): Promise<Verdict | null> {
  const { ev } = run
  if (!record) return null // nothing under this id yet: a new module
  const candidate: Candidate = {
    moduleId,
    repositoryId: ev.repositoryId,
    releaseId: ev.release.id,
    version: run.version,
    channel: ev.channel,
  }
  const decision = decide(record, candidate)
  switch (decision.kind) {
    case 'new':
      return null
    case 'already':
      return { kind: 'announce', outcome: 'duplicate', moduleId, record }
    case 'deleted':
      return { kind: 'deleted', moduleId }
    case 'promote':
      return promote(run, moduleId, record, known)
    case 'reject':
      if (decision.code === 'version_not_newer' && olderThanLatest(run, record))
        return { kind: 'stale', reason: decision.reason, moduleId: known.bound }
      return refused(new Rejection(decision.code, decision.reason), known)
  }
}

/** The beta release is now a full one: its stored entry moves to the stable channel. */
async function promote(run: Run, moduleId: string, record: ModuleRecord, known: Known): Promise<Verdict> {
  const result = await run.deps.registry.commitVersion({
    moduleId,
    title: record.title,
    repository: run.ev.repository,
    entry: { ...entryOf(record, run), channel: 'stable' },
  })
  switch (result.outcome) {
    case 'rejected':
      return refused(new Rejection(result.code, result.reason), known)
    case 'deleted':
      return { kind: 'deleted', moduleId }
    case 'promoted':
      return { kind: 'announce', outcome: 'promoted', moduleId, record: result.record }
    case 'committed':
    case 'already':
      return { kind: 'announce', outcome: 'duplicate', moduleId, record: result.record }
  }
}

/** Version = tag, the repository's module id, and the registry's rules — before the big download. */
async function checkManifest(
  run: Run,
  manifest: ValidManifest,
  bound: string | null
): Promise<Verdict | null> {
  const known: Known = { bound, manifestId: manifest.id }
  if (manifest.version !== run.version)
    return refused(
      new Rejection(
        'version_tag_mismatch',
        `module.json says version ${manifest.version}, but the release tag "${run.ev.release.tag_name}" means version ${run.version}`
      ),
      known
    )
  if (bound) return bound === manifest.id ? null : refused(idMismatch(manifest.id, bound), known)
  // Not bound yet, yet already stored: only a replay of this release can get here.
  const record = await run.deps.registry.getModule(manifest.id)
  return registryVerdict(run, manifest.id, record?.value ?? null, known)
}

/** GitHub published this release before the channel's latest version: a late replay, not news. */
function olderThanLatest(run: Run, record: ModuleRecord): boolean {
  const published = Date.parse(run.ev.release.published_at ?? '')
  const latest = record.versions.find((v) => v.version === record.latest[run.ev.channel])
  const latestPublished = Date.parse(latest?.publishedAt ?? '')
  return Number.isFinite(published) && Number.isFinite(latestPublished) && published < latestPublished
}

/** Per-repository quota, counted over the module's versions (`record`) this repository published. */
function quotaRefusal(run: Run, record: ModuleRecord | null, zipBytes: number): Rejection | null {
  const { maxBytes, maxVersions } = run.deps.limits.quota
  const own = record?.versions.filter((v) => v.repositoryId === run.ev.repositoryId) ?? []
  const bytes = own.reduce((sum, v) => sum + v.zip.size, 0)
  if (own.length + 1 > maxVersions)
    return new Rejection(
      'quota_exceeded',
      `this repository has ${own.length} versions stored, the quota is ${maxVersions}`
    )
  if (bytes + zipBytes > maxBytes)
    return new Rejection(
      'quota_exceeded',
      `this repository's zips take ${bytes} bytes and this one ${zipBytes}, the quota is ${maxBytes} bytes`
    )
  return null
}

function idMismatch(claimed: string, bound: string): Rejection {
  return new Rejection(
    'module_id_mismatch',
    `module.json says id "${claimed}", but this repository publishes "${bound}"; a repository's module id cannot change`
  )
}

function download(run: Run, asset: ReleaseAsset, maxBytes: number, token: string): Promise<Uint8Array> {
  return downloadAsset(asset, maxBytes, run.deps.assets, token, run.keepAlive)
}

/** The zip's entries and module.json; the zip's faults become Rejections naming the file. */
async function inspectZip(run: Run, bytes: Uint8Array, name: string): Promise<InspectedZip> {
  const { limits } = run.deps
  try {
    const entries = readZip(bytes, limits.zip)
    const entry = findManifestEntry(entries)
    const content = await verifyEntries(
      bytes,
      entries,
      entry,
      { ...limits.zip, maxKeptBytes: limits.maxManifestBytes },
      run.keepAlive
    )
    return { name, bytes, entries, entry, manifest: validateManifest(content, `module.json in ${name}`) }
  } catch (err) {
    if (err instanceof ZipError) throw new Rejection(err.code, `${name}: ${err.message}`)
    throw err
  }
}

/**
 * Runs a step whose checks refuse by throwing a Rejection (the asset, manifest and zip modules):
 * its refusal becomes the run's verdict, recorded under what is `known` at that step.
 */
async function refusable<T>(known: Known, step: () => Promise<T> | T): Promise<Step<T>> {
  try {
    return { ok: true, value: await step() }
  } catch (err) {
    if (err instanceof Rejection) return stop(refused(err, known))
    throw err
  }
}

/** A refusal, recorded under the repository's own module (never under an id another repository owns). */
function refused(rejection: Rejection, known: Known, stored: StoredZip | null = null): Verdict {
  const moduleId =
    rejection.code === 'module_id_taken'
      ? null
      : rejection.code === 'module_id_mismatch'
        ? known.bound
        : (known.bound ?? known.manifestId)
  return { kind: 'rejected', rejection, moduleId, stored }
}

const stop = (verdict: Verdict): { ok: false; verdict: Verdict } => ({ ok: false, verdict })

/**
 * Acts on the verdict while the lease is still held (announcing, taking refused files back) and
 * says what the claim's record becomes.
 */
async function settle(run: Run, claim: Claim, verdict: Verdict): Promise<LeaseEnd<Verdict>> {
  switch (verdict.kind) {
    case 'announce': {
      const { channel, announced } = await announce(run, claim.record.announced, verdict)
      return {
        record: { state: 'packaged', channel, moduleId: verdict.moduleId, announced },
        result: verdict,
      }
    }
    case 'deleted': {
      // Nothing is left to announce in either channel.
      const announced = [...new Set<Channel>([...claim.record.announced, 'stable', 'beta'])]
      return { record: { state: 'packaged', moduleId: verdict.moduleId, announced }, result: verdict }
    }
    case 'stale':
      return {
        record: {
          state: 'rejected',
          code: 'version_not_newer',
          reason: verdict.reason,
          moduleId: verdict.moduleId,
        },
        result: verdict,
      }
    case 'rejected': {
      if (verdict.stored) await cleanUp(run, verdict.stored)
      const { code, message } = verdict.rejection
      return {
        record: { state: 'rejected', code, reason: message, moduleId: verdict.moduleId },
        result: verdict,
      }
    }
  }
}

/**
 * Publishes `packaged` for the channel the registry holds, unless the claim records it as announced
 * already; returns that channel and the channels announced now.
 */
async function announce(
  run: Run,
  alreadyAnnounced: readonly Channel[],
  held: { moduleId: string; record: ModuleRecord }
): Promise<{ channel: Channel; announced: Channel[] }> {
  const { deps, ev, version } = run
  const { moduleId, record } = held
  const entry = entryOf(record, run)
  const announced = [...alreadyAnnounced]
  const urls = moduleUrls(deps.publicBaseUrl, moduleId, version)
  // The announcement quotes the notes GitHub serves for this release now (confirm.ts), never older
  // than a stored copy, so storing them is not on its way. They are stored once the version is the
  // registry's (a refused release must not touch them); notes already there (an `edited` event, a
  // retried run) stay.
  const notes = ev.release.body ?? ''
  await Promise.all([
    deps.registry.createNotes(moduleId, version, {
      notes,
      releaseId: ev.release.id,
      updatedAt: new Date().toISOString(),
    }),
    announced.includes(entry.channel)
      ? null
      : publishPackaged(deps.js, {
          moduleId,
          title: record.title,
          version: entry.version,
          channel: entry.channel,
          compatibility: entry.compatibility,
          notes: notes.slice(0, NOTES_EXCERPT_MAX),
          releaseUrl: entry.releaseUrl,
          manifestUrl: entry.channel === 'beta' ? urls.betaManifest : urls.manifest,
          downloadUrl: entry.downloadUrl,
          repositoryId: ev.repositoryId,
          repository: record.repository,
          releaseId: ev.release.id,
          tag: entry.tag,
          author: ev.release.author?.login ?? null,
          packagedAt: entry.packagedAt,
        }),
  ])
  if (!announced.includes(entry.channel)) announced.push(entry.channel)
  return { channel: entry.channel, announced }
}

/** This release's version entry in a record the registry answered with for it. */
function entryOf(record: ModuleRecord, run: Run): VersionEntry {
  const entry = record.versions.find((v) => v.version === run.version && v.releaseId === run.ev.release.id)
  // The registry's answer (already, promote, committed) guarantees the entry: a miss is a bug.
  if (!entry) throw new Error(`${record.id} has no version ${run.version} of release ${run.ev.release.id}`)
  return entry
}

/** Artifacts of a release that was refused at the commit never stay behind. */
async function cleanUp(run: Run, stored: StoredZip): Promise<void> {
  const { registry } = run.deps
  await registry.deleteZip(stored.object).catch(() => undefined)
  await registry.deleteManifest(stored.moduleId, run.version, run.ev.release.id).catch(() => undefined)
}
