/**
 * Packaging one release (`published`, `released`, `prereleased`), as GitHub serves it (confirm.ts:
 * repository name, tag, notes, flags and assets are GitHub's answer, never the payload's): claim it, find out what the
 * registry already has, fetch and check the release's manifest and zip, rewrite both to our URLs,
 * store them, commit the version, publish `packaged`. Exactly once per (repository, release,
 * version, channel), whatever the redeliveries, duplicate events, crashes and concurrent workers:
 *
 *   - the claim (claim.ts) keeps two workers from doing the same work at once;
 *   - artifacts are written under per-release names before the commit, so retrying rewrites them;
 *   - the module record's compare-and-set is the commit (registry/writer.ts): it re-checks every
 *     rule and tells a replay that this release is `already` there;
 *   - `packaged` is published with a deterministic message id, then marked in the release record;
 *     a crash between the two publishes again and the stream drops the duplicate;
 *   - a release older (GitHub's `published_at`) than the channel's latest, that the registry never
 *     held, is a late replay: it changes nothing and announces nothing;
 *   - per-repository quotas (stored zip bytes, versions) are checked before anything is stored.
 */
import { createHash } from 'node:crypto'
import type { JetStreamClient } from '@nats-io/jetstream'
import { NOTES_EXCERPT_MAX, type Channel } from '#shared/releases.ts'
import type { Logger } from '../runtime/logger.ts'
import { versionFromTag } from '../registry/foundry-version.ts'
import { isVersion, registryKeys, zipObjectName } from '../registry/names.ts'
import type { ModuleRecord, VersionEntry } from '../registry/records.ts'
import { decide } from '../registry/version-rules.ts'
import type { RegistryWriter } from '../registry/writer.ts'
import { downloadAsset, manifestAsset, zipAsset, type AssetLimits } from './assets.ts'
import type { Claim, ReleaseClaims } from './claim.ts'
import { Rejection } from './errors.ts'
import { publishPackaged } from './events.ts'
import type { GitHubApp, GitHubRelease } from './github-api.ts'
import { moduleUrls, rewriteManifest, validateManifest, type ValidManifest } from './manifest.ts'
import type { ReleaseMetrics } from './metrics.ts'
import { modulePurgePaths } from './purge.ts'
import { announceRejection } from './rejections.ts'
import type { WorkItem } from '../runtime/work-queue.ts'
import { findManifestEntry, readZip, rewriteZip, verifyEntries, ZipError, type ZipLimits } from './zip.ts'

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
  const key = registryKeys.release(ev.repositoryId, ev.release.id, version)
  const acquired = await deps.claims.acquire(
    key,
    { channel: ev.channel, delivery: ev.delivery },
    item.keepAlive,
    deps.claims.leaseMs * 3
  )
  if (acquired.kind === 'done') return 'duplicate'
  const run = new PackagingRun(deps, ev, version, acquired.claim, item)
  return run.execute()
}

class PackagingRun {
  readonly deps: PackagerDeps
  readonly ev: ReleaseToPackage
  readonly version: string
  readonly claim: Claim
  readonly item: WorkItem
  readonly repositoryId: number
  readonly releaseId: number
  /** The module id this repository is bound to, once known. */
  bound: string | null = null
  /** The module id the manifest claims, once read. */
  manifestId: string | null = null
  #renewing: Promise<unknown> = Promise.resolve()
  #renewal: NodeJS.Timeout | undefined
  #stored: { object: string; manifest: boolean } | null = null

  constructor(deps: PackagerDeps, ev: ReleaseToPackage, version: string, claim: Claim, item: WorkItem) {
    this.deps = deps
    this.ev = ev
    this.version = version
    this.claim = claim
    this.item = item
    this.repositoryId = ev.repositoryId
    this.releaseId = ev.release.id
  }

  async execute(): Promise<PackageOutcome> {
    const started = performance.now()
    this.#renewal = setInterval(
      () => {
        // One renewal at a time: each compare-and-sets the revision the previous one wrote.
        this.#renewing = this.#renewing.then(() => this.deps.claims.renew(this.claim)).catch(() => false)
      },
      Math.max(250, Math.floor(this.deps.claims.leaseMs / 3))
    )
    try {
      const outcome = await this.#steps()
      if (outcome === 'packaged' || outcome === 'promoted')
        this.deps.metrics.packagingSeconds.observe((performance.now() - started) / 1000)
      return outcome
    } catch (err) {
      await this.#quiet()
      if (err instanceof AlreadyDone) return err.outcome
      if (err instanceof Rejection) {
        await this.#cleanUp()
        await this.#reject(err)
        return 'rejected'
      }
      await this.deps.claims.release(this.claim)
      throw err
    } finally {
      clearInterval(this.#renewal)
    }
  }

  /** Stops renewing the lease and waits for a renewal in flight, so the next write sees the latest revision. */
  async #quiet(): Promise<void> {
    clearInterval(this.#renewal)
    await this.#renewing
  }

  async #steps(): Promise<PackageOutcome> {
    const { deps, ev, version } = this
    const { registry } = deps
    const candidate = (moduleId: string) => ({
      moduleId,
      repositoryId: this.repositoryId,
      releaseId: this.releaseId,
      version,
      channel: ev.channel,
    })

    // 1. What the registry already knows: a replay or a promotion needs no download.
    this.bound = await registry.repositoryModule(this.repositoryId)
    if (this.bound) {
      const decision = await this.#decideFor(this.bound, candidate(this.bound))
      if (decision) return decision
    }

    // 2. The release as GitHub has it (confirmed before the claim), and its manifest.
    const { release } = ev
    const token = await deps.github.installationToken(ev.installationId)
    const manifestFile = manifestAsset(release.assets)
    let manifest: ValidManifest | null = null
    if (manifestFile) {
      const bytes = await downloadAsset(
        manifestFile,
        deps.limits.maxManifestBytes,
        deps.assets,
        token,
        this.item.keepAlive
      )
      manifest = validateManifest(bytes, 'module.json (release asset)')
      await this.#checkManifest(manifest, candidate)
    }

    // 3. The zip: checked entry by entry, its module.json must agree.
    const zipFile = zipAsset(release.assets, manifest?.id ?? this.bound)
    const zipBytes = await downloadAsset(
      zipFile,
      deps.limits.maxZipBytes,
      deps.assets,
      token,
      this.item.keepAlive
    )
    const { entries, entry, zipManifest } = await this.#inspectZip(zipBytes, zipFile.name)
    if (manifest) {
      if (zipManifest.id !== manifest.id || zipManifest.version !== manifest.version)
        throw new Rejection(
          'zip_manifest_mismatch',
          `module.json in ${zipFile.name} says ${zipManifest.id} ${zipManifest.version}, the release's module.json says ${manifest.id} ${manifest.version}`
        )
    } else {
      manifest = zipManifest
      await this.#checkManifest(manifest, candidate)
    }
    const moduleId = manifest.id

    // 4. Rewrite to our URLs and store under this release's own names.
    const urls = moduleUrls(deps.publicBaseUrl, moduleId, version)
    const manifestJson = rewriteManifest(manifest.raw, urls)
    const zipManifestJson = manifest === zipManifest ? manifestJson : rewriteManifest(zipManifest.raw, urls)
    const zip = rewriteZip(zipBytes, entries, entry, Buffer.from(zipManifestJson))
    await this.#checkQuota(moduleId, zip.length)
    const object = zipObjectName(moduleId, version, this.releaseId)
    this.#stored = { object, manifest: false }
    await registry.putZip(object, zip)
    this.item.keepAlive()
    const manifestSha = sha256(manifestJson)
    await registry.putManifest({
      moduleId,
      version,
      releaseId: this.releaseId,
      json: manifestJson,
      sha256: manifestSha,
    })
    this.#stored.manifest = true

    // 5. Commit: the module record's compare-and-set decides, atomically across workers.
    // Bound already (read at step 1, checked against the manifest): bindings never change.
    if (this.bound !== moduleId) {
      const binding = await registry.bindRepository(this.repositoryId, moduleId)
      if (!binding.ok) throw this.#idMismatch(moduleId, binding.boundTo)
      this.bound = moduleId
    }
    const entryToAdd: VersionEntry = {
      version,
      channel: ev.channel,
      status: 'packaged',
      repositoryId: this.repositoryId,
      releaseId: this.releaseId,
      tag: release.tag_name,
      releaseUrl: release.html_url,
      manifestUrl: urls.manifest,
      downloadUrl: urls.download,
      compatibility: manifest.compatibility,
      zip: { object, sha256: sha256(zip), size: zip.length },
      manifestSha256: manifestSha,
      packagedAt: new Date().toISOString(),
      deletedAt: null,
      publishedAt: release.published_at ?? null,
    }
    const result = await registry.commitVersion({
      moduleId,
      title: manifest.title,
      repository: ev.repository,
      entry: entryToAdd,
    })
    if (result.outcome === 'rejected') throw new Rejection(result.code, result.reason)
    // From here on the artifacts are the registry's (ours, or an identical replay's): never clean them up.
    this.#stored = null
    if (result.outcome === 'deleted') return this.#settleDeleted(moduleId)
    return this.#announce(
      moduleId,
      result.record,
      result.outcome === 'committed' ? 'packaged' : result.outcome === 'promoted' ? 'promoted' : 'duplicate'
    )
  }

  /** What the registry says about this release of `moduleId`; null when it must be packaged. */
  async #decideFor(moduleId: string, c: Parameters<typeof decide>[1]): Promise<PackageOutcome | null> {
    const current = await this.deps.registry.getModule(moduleId)
    const decision = decide(current?.value ?? null, c)
    switch (decision.kind) {
      case 'new':
        return null
      case 'already':
        return this.#announce(moduleId, current!.value, 'duplicate')
      case 'deleted':
        return this.#settleDeleted(moduleId)
      case 'promote': {
        const stored = current!.value.versions.find((v) => v.version === c.version)!
        const result = await this.deps.registry.commitVersion({
          moduleId,
          title: current!.value.title,
          repository: this.ev.repository,
          entry: { ...stored, channel: 'stable' },
        })
        if (result.outcome === 'rejected') throw new Rejection(result.code, result.reason)
        if (result.outcome === 'deleted') return this.#settleDeleted(moduleId)
        return this.#announce(
          moduleId,
          result.record,
          result.outcome === 'promoted' ? 'promoted' : 'duplicate'
        )
      }
      case 'reject':
        if (decision.code === 'version_not_newer' && this.#olderThanLatest(current!.value))
          throw new AlreadyDone(await this.#settleStale(decision.reason))
        throw new Rejection(decision.code, decision.reason)
    }
  }

  /** GitHub published this release before the channel's latest version: a late replay, not news. */
  #olderThanLatest(record: ModuleRecord): boolean {
    const published = Date.parse(this.ev.release.published_at ?? '')
    const latest = record.versions.find((v) => v.version === record.latest[this.ev.channel])
    const latestPublished = Date.parse(latest?.publishedAt ?? '')
    return Number.isFinite(published) && Number.isFinite(latestPublished) && published < latestPublished
  }

  /** Records the stale release as refused, quietly: no event, no notice, nothing stored. */
  async #settleStale(reason: string): Promise<PackageOutcome> {
    await this.#quiet()
    await this.deps.claims.rejected(this.claim, 'version_not_newer', reason, this.bound)
    this.deps.log.info(
      { repositoryId: this.repositoryId, release: this.releaseId, version: this.version, reason },
      'stale release ignored'
    )
    return 'stale'
  }

  /** Per-repository quota, counted over the module's versions this repository published. */
  async #checkQuota(moduleId: string, zipBytes: number): Promise<void> {
    const { maxBytes, maxVersions } = this.deps.limits.quota
    const record = (await this.deps.registry.getModule(moduleId))?.value
    const own = record?.versions.filter((v) => v.repositoryId === this.repositoryId) ?? []
    const bytes = own.reduce((sum, v) => sum + v.zip.size, 0)
    if (own.length + 1 > maxVersions)
      throw new Rejection(
        'quota_exceeded',
        `this repository has ${own.length} versions stored, the quota is ${maxVersions}`
      )
    if (bytes + zipBytes > maxBytes)
      throw new Rejection(
        'quota_exceeded',
        `this repository's zips take ${bytes} bytes and this one ${zipBytes}, the quota is ${maxBytes} bytes`
      )
  }

  /** Version = tag, the repository's module id, and the registry's rules — before the big download. */
  async #checkManifest(
    manifest: ValidManifest,
    candidate: (id: string) => Parameters<typeof decide>[1]
  ): Promise<void> {
    this.manifestId = manifest.id
    if (manifest.version !== this.version)
      throw new Rejection(
        'version_tag_mismatch',
        `module.json says version ${manifest.version}, but the release tag "${this.ev.release.tag_name}" means version ${this.version}`
      )
    if (this.bound && this.bound !== manifest.id) throw this.#idMismatch(manifest.id, this.bound)
    if (!this.bound) {
      const decided = await this.#decideFor(manifest.id, candidate(manifest.id))
      // Not bound yet, yet already stored: only a replay of this release can get here.
      if (decided) throw new AlreadyDone(decided)
    }
  }

  #idMismatch(claimed: string, bound: string): Rejection {
    return new Rejection(
      'module_id_mismatch',
      `module.json says id "${claimed}", but this repository publishes "${bound}"; a repository's module id cannot change`
    )
  }

  async #inspectZip(bytes: Uint8Array, name: string) {
    try {
      const entries = readZip(bytes, this.deps.limits.zip)
      const entry = findManifestEntry(entries)
      const content = await verifyEntries(
        bytes,
        entries,
        entry,
        { ...this.deps.limits.zip, maxKeptBytes: this.deps.limits.maxManifestBytes },
        this.item.keepAlive
      )
      const zipManifest = validateManifest(content, `module.json in ${name}`)
      return { entries, entry, zipManifest }
    } catch (err) {
      if (err instanceof ZipError) throw new Rejection(err.code, `${name}: ${err.message}`)
      throw err
    }
  }

  /** Publishes `packaged` for the channel the registry holds, once, then records the outcome. */
  async #announce(moduleId: string, record: ModuleRecord, outcome: PackageOutcome): Promise<PackageOutcome> {
    const entry = record.versions.find((v) => v.version === this.version && v.releaseId === this.releaseId)!
    const announced = [...this.claim.record.announced]
    const urls = moduleUrls(this.deps.publicBaseUrl, moduleId, this.version)
    // Notes are written once the version is the registry's (a refused release must not touch them).
    let notes = (await this.deps.registry.getNotes(moduleId, this.version))?.notes
    if (notes === undefined) {
      notes = this.ev.release.body ?? ''
      await this.deps.registry.putNotes(moduleId, this.version, {
        notes,
        releaseId: this.releaseId,
        updatedAt: new Date().toISOString(),
      })
    }
    if (!announced.includes(entry.channel)) {
      await publishPackaged(this.deps.js, {
        moduleId,
        title: record.title,
        version: entry.version,
        channel: entry.channel,
        compatibility: entry.compatibility,
        notes: notes.slice(0, NOTES_EXCERPT_MAX),
        releaseUrl: entry.releaseUrl,
        manifestUrl: entry.channel === 'beta' ? urls.betaManifest : urls.manifest,
        downloadUrl: entry.downloadUrl,
        repositoryId: this.repositoryId,
        repository: record.repository,
        releaseId: this.releaseId,
        tag: entry.tag,
        author: this.ev.release.author?.login ?? null,
        packagedAt: entry.packagedAt,
      })
      announced.push(entry.channel)
    }
    await this.#quiet()
    await this.deps.claims.finish(this.claim, {
      state: 'packaged',
      channel: entry.channel,
      moduleId,
      announced,
    })
    if (outcome !== 'duplicate') this.deps.changed(modulePurgePaths(moduleId))
    return outcome
  }

  async #settleDeleted(moduleId: string): Promise<PackageOutcome> {
    await this.#quiet()
    await this.deps.claims.finish(this.claim, {
      state: 'packaged',
      moduleId,
      announced: [...new Set([...this.claim.record.announced, 'stable', 'beta'] as Channel[])],
    })
    return 'ignored'
  }

  /** Artifacts of a release that was refused at the commit never stay behind. */
  async #cleanUp(): Promise<void> {
    const stored = this.#stored
    if (!stored || !this.manifestId) return
    await this.deps.registry.deleteZip(stored.object).catch(() => undefined)
    if (stored.manifest)
      await this.deps.registry
        .deleteManifest(this.manifestId, this.version, this.releaseId)
        .catch(() => undefined)
  }

  async #reject(rejection: Rejection): Promise<void> {
    // Recorded under the repository's own module (never under an id another repository owns).
    const owned =
      rejection.code === 'module_id_taken'
        ? null
        : rejection.code === 'module_id_mismatch'
          ? this.bound
          : (this.bound ?? this.manifestId)
    await this.deps.claims.rejected(this.claim, rejection.code, rejection.message, owned)
    await announceRejection(this.deps, this.ev, { moduleId: owned, version: this.version }, rejection)
  }
}

/** Thrown from deep inside the checks when the registry already has this release. */
class AlreadyDone extends Error {
  readonly outcome: PackageOutcome
  constructor(outcome: PackageOutcome) {
    super(outcome)
    this.outcome = outcome
  }
}
