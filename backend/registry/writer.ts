/**
 * Changing the registry (the release service). Every change to a module is a compare-and-set of
 * its ModuleRecord, so three release services deciding at once still agree: the loser re-reads and
 * re-decides. Artifacts (manifest, zip) are written before the commit under per-release names, so
 * a commit only ever points at complete data.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ObjectInfo } from '@nats-io/obj'
import type { RejectionCode } from '#shared/releases.ts'
import type { RegistryStorage } from './buckets.ts'
import type { JsonKv, Versioned } from './kv-store.ts'
import { registryKeys } from './names.ts'
import { recomputeLatest } from './channels.ts'
import { decide } from './version-rules.ts'
import {
  enrollmentSchema,
  moduleRecordSchema,
  notesRecordSchema,
  repositoryBindingSchema,
  type AuditRecord,
  type Enrollment,
  type ManifestRecord,
  type ModuleRecord,
  type NotesRecord,
  type RejectionRecord,
  type VersionEntry,
} from './records.ts'

export type CommitResult =
  | { outcome: 'committed' | 'promoted' | 'already' | 'deleted'; record: ModuleRecord }
  | { outcome: 'rejected'; code: RejectionCode; reason: string }

const MAX_CAS_ATTEMPTS = 25

/** Backoff with full jitter between compare-and-set attempts. */
const pause = (attempt: number) => sleep(Math.min(200, 5 * 2 ** attempt) * Math.random())

export class RegistryWriter {
  readonly storage: RegistryStorage

  constructor(storage: RegistryStorage) {
    this.storage = storage
  }

  get kv(): JsonKv {
    return this.storage.kv
  }

  /** The module id a repository is bound to, or null before its first packaged release. */
  async repositoryModule(repositoryId: number): Promise<string | null> {
    return (
      (await this.kv.get(registryKeys.repository(repositoryId), repositoryBindingSchema))?.value.moduleId ??
      null
    )
  }

  /** Binds a repository to a module id once, atomically; says which id it is bound to when that differs. */
  async bindRepository(
    repositoryId: number,
    moduleId: string
  ): Promise<{ ok: true } | { ok: false; boundTo: string }> {
    const key = registryKeys.repository(repositoryId)
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const bound = await this.repositoryModule(repositoryId)
      if (bound !== null) return bound === moduleId ? { ok: true } : { ok: false, boundTo: bound }
      if ((await this.kv.create(key, { moduleId, boundAt: new Date().toISOString() })) !== null)
        return { ok: true }
      await pause(attempt)
    }
    throw new Error(`${key}: could not bind after ${MAX_CAS_ATTEMPTS} attempts`)
  }

  /** The operator's enrollment of a repository, or null: only enrolled repositories publish. */
  async enrollment(repositoryId: number): Promise<Enrollment | null> {
    return (await this.kv.get(registryKeys.enrolled(repositoryId), enrollmentSchema))?.value ?? null
  }

  /** Enrolls a repository (idempotent: an enrolled one keeps its record), audited when new. */
  async enroll(
    repository: { id: number; name: string },
    by: string
  ): Promise<{ record: Enrollment; created: boolean }> {
    const existing = await this.enrollment(repository.id)
    if (existing) return { record: existing, created: false }
    const record: Enrollment = {
      repositoryId: repository.id,
      repository: repository.name,
      enrolledBy: by,
      enrolledAt: new Date().toISOString(),
    }
    if ((await this.kv.create(registryKeys.enrolled(repository.id), record)) === null)
      return { record: (await this.enrollment(repository.id))!, created: false }
    await this.audit({ action: 'enroll', by, moduleId: null, from: null, to: repository })
    return { record, created: true }
  }

  /**
   * Moves a module to another (enrolled) repository: the module record names it, its binding
   * follows, the old repository's binding goes. The new repository must not publish another module.
   */
  async transferModule(
    moduleId: string,
    to: { id: number; name: string },
    by: string
  ): Promise<{ from: { id: number; name: string }; to: { id: number; name: string } }> {
    if (!(await this.enrollment(to.id)))
      throw new Error(`${to.name} (${to.id}) is not enrolled: enroll it first`)
    const boundTo = await this.repositoryModule(to.id)
    if (boundTo !== null && boundTo !== moduleId)
      throw new Error(`${to.name} (${to.id}) already publishes "${boundTo}"`)
    const key = registryKeys.module(moduleId)
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = await this.getModule(moduleId)
      if (!current) throw new Error(`no module "${moduleId}" in the registry`)
      const from = { id: current.value.repositoryId, name: current.value.repository }
      const next: ModuleRecord = {
        ...current.value,
        repositoryId: to.id,
        repository: to.name,
        updatedAt: new Date().toISOString(),
      }
      if ((await this.kv.update(key, next, current.revision)) === null) {
        await pause(attempt)
        continue
      }
      await this.kv.put(registryKeys.repository(to.id), { moduleId, boundAt: next.updatedAt })
      if (from.id !== to.id) await this.kv.delete(registryKeys.repository(from.id))
      await this.audit({ action: 'transfer', by, moduleId, from, to })
      return { from, to }
    }
    throw new Error(`${key}: too much contention, gave up after ${MAX_CAS_ATTEMPTS} attempts`)
  }

  async audit(entry: Omit<AuditRecord, 'at'>): Promise<AuditRecord> {
    const at = new Date()
    const record: AuditRecord = { ...entry, at: at.toISOString() }
    await this.kv.put(registryKeys.audit(at, randomUUID()), record)
    return record
  }

  /**
   * Whether a rejection notice for (repository, release, version, code) was published. Marked after
   * the publish, so a crash in between publishes again (deduplicated by the message id in the window).
   */
  async noticeSent(repositoryId: number, releaseId: number, version: string, code: string): Promise<boolean> {
    return (
      (await this.kv.kv.get(registryKeys.notice(repositoryId, releaseId, version, code)))?.operation === 'PUT'
    )
  }

  async markNoticeSent(
    repositoryId: number,
    releaseId: number,
    version: string,
    code: string
  ): Promise<void> {
    await this.kv.put(registryKeys.notice(repositoryId, releaseId, version, code), {
      at: new Date().toISOString(),
    })
  }

  async getModule(id: string): Promise<Versioned<ModuleRecord> | null> {
    return this.kv.get(registryKeys.module(id), moduleRecordSchema)
  }

  /**
   * Adds (or promotes) one release's version, re-checking every rule against the record it
   * replaces; `already` when this release is there, `rejected` when a rule forbids it.
   * `seen` (the record as the caller read it, null when absent) saves the first read when it
   * leads to a write: the compare-and-set refuses the write if the record has moved on since.
   * Any other answer (already, deleted, rejected) is only given from a fresh read.
   */
  async commitVersion(
    input: {
      moduleId: string
      title: string
      repository: string
      entry: VersionEntry
    },
    seen?: Versioned<ModuleRecord> | null
  ): Promise<CommitResult> {
    const { moduleId, entry } = input
    const key = registryKeys.module(moduleId)
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const fromSeen = attempt === 0 && seen !== undefined
      const current = fromSeen ? seen : await this.getModule(moduleId)
      const record = current?.value ?? null
      const decision = decide(record, { ...entry, moduleId })
      if (fromSeen && decision.kind !== 'new' && decision.kind !== 'promote') continue
      if (decision.kind === 'reject')
        return { outcome: 'rejected', code: decision.code, reason: decision.reason }
      if (decision.kind === 'already' || decision.kind === 'deleted')
        return { outcome: decision.kind, record: record! }
      const versions =
        decision.kind === 'promote'
          ? record!.versions.map((v) => (v.version === entry.version ? { ...v, channel: entry.channel } : v))
          : [...(record?.versions ?? []), entry]
      const next: ModuleRecord = {
        id: moduleId,
        title: decision.kind === 'new' ? input.title : record!.title,
        repositoryId: entry.repositoryId,
        repository: input.repository,
        latest: recomputeLatest(versions),
        versions,
        updatedAt: new Date().toISOString(),
      }
      if ((await this.kv.write(key, next, current?.revision ?? null)) !== null)
        return { outcome: decision.kind === 'new' ? 'committed' : 'promoted', record: next }
      await pause(attempt)
    }
    throw new Error(`${key}: too much contention, gave up after ${MAX_CAS_ATTEMPTS} attempts`)
  }

  /** Marks every version of a release deleted (idempotent); returns the entries it changed. */
  async markReleaseDeleted(moduleId: string, releaseId: number): Promise<VersionEntry[]> {
    const key = registryKeys.module(moduleId)
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = await this.getModule(moduleId)
      if (!current) return []
      const changed = current.value.versions.filter(
        (v) => v.releaseId === releaseId && v.status !== 'deleted'
      )
      if (changed.length === 0) return []
      const now = new Date().toISOString()
      const versions = current.value.versions.map((v) =>
        changed.includes(v) ? { ...v, status: 'deleted' as const, deletedAt: now } : v
      )
      const next = { ...current.value, versions, latest: recomputeLatest(versions), updatedAt: now }
      if ((await this.kv.update(key, next, current.revision)) !== null) return changed
      await pause(attempt)
    }
    throw new Error(`${key}: too much contention, gave up after ${MAX_CAS_ATTEMPTS} attempts`)
  }

  async putManifest(record: ManifestRecord): Promise<void> {
    await this.kv.put(registryKeys.manifest(record.moduleId, record.version, record.releaseId), record)
  }

  async getNotes(moduleId: string, version: string): Promise<NotesRecord | null> {
    return (await this.kv.get(registryKeys.notes(moduleId, version), notesRecordSchema))?.value ?? null
  }

  /**
   * Stores the version's notes unless it has some (an `edited` event or an earlier run wrote them,
   * and they stay); true when stored now. One create: the KV's create also writes over a deleted entry.
   */
  async createNotes(moduleId: string, version: string, record: NotesRecord): Promise<boolean> {
    return (await this.kv.create(registryKeys.notes(moduleId, version), record)) !== null
  }

  async putNotes(moduleId: string, version: string, record: NotesRecord): Promise<void> {
    await this.kv.put(registryKeys.notes(moduleId, version), record)
  }

  async putRejection(moduleId: string, version: string, record: RejectionRecord): Promise<void> {
    await this.kv.put(registryKeys.rejection(moduleId, version), record)
  }

  async putZip(objectName: string, bytes: Uint8Array): Promise<ObjectInfo> {
    return this.storage.zips.putBlob({ name: objectName, description: 'module zip' }, bytes)
  }

  async deleteZip(objectName: string): Promise<void> {
    await this.storage.zips.delete(objectName)
  }

  async deleteManifest(moduleId: string, version: string, releaseId: number): Promise<void> {
    await this.kv.delete(registryKeys.manifest(moduleId, version, releaseId))
  }
}
