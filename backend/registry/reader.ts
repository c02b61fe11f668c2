/**
 * Reading the registry (the web service's module API). Binds lazily: until the release service has
 * created the buckets, the registry is simply empty. Given `mirrorRegion` (the web service's region
 * when the registry has a read mirror there, issue #15), it reads the KV from that mirror; while the
 * mirror does not exist yet it reads the origin and looks for the mirror again every few seconds, and
 * while `freshness` says the mirror is stale (mirror-freshness.ts) it reads the origin's stream leader.
 */
import type { NatsConnection } from '@nats-io/nats-core'
import type { ObjectResult } from '@nats-io/obj'
import type { z } from 'zod'
import { openRegistryMirror, openRegistryStorage, type RegistryStorage } from './buckets.ts'
import { registryKeys } from './names.ts'
import {
  manifestRecordSchema,
  moduleRecordSchema,
  notesRecordSchema,
  rejectionRecordSchema,
  type ManifestRecord,
  type ModuleRecord,
  type NotesRecord,
  type RejectionRecord,
} from './records.ts'

/** How long "no registry yet" (or "no mirror yet") is believed before binding is tried again. */
const RETRY_MISSING_MS = 2_000

export class RegistryReader {
  readonly #nc: NatsConnection
  readonly #mirrorRegion: string | undefined
  readonly #freshness: { readonly stale: boolean } | undefined
  #storage: Promise<RegistryStorage | null> | undefined
  #retryAfter = 0
  #leader: Promise<RegistryStorage | null> | undefined

  constructor(
    nc: NatsConnection,
    o: { mirrorRegion?: string | undefined; freshness?: { readonly stale: boolean } | undefined } = {}
  ) {
    this.#nc = nc
    this.#mirrorRegion = o.mirrorRegion
    this.#freshness = o.freshness
  }

  /** Europe's registry read through its stream leader (never a mirror), bound once it exists. */
  #openLeader(): Promise<RegistryStorage | null> {
    this.#leader ??= openRegistryStorage(this.#nc, { direct: false }).then(
      (storage) => {
        if (!storage) this.#leader = undefined
        return storage
      },
      (err: unknown) => {
        this.#leader = undefined
        throw err
      }
    )
    return this.#leader
  }

  async #open(): Promise<RegistryStorage | null> {
    if (this.#storage === undefined || (this.#retryAfter && Date.now() > this.#retryAfter)) {
      this.#retryAfter = 0
      this.#storage = this.#bind().then(
        ({ storage, settled }) => {
          if (!settled) this.#retryAfter = Date.now() + RETRY_MISSING_MS
          return storage
        },
        (err: unknown) => {
          this.#storage = undefined
          throw err
        }
      )
    }
    return this.#storage
  }

  /** The storage to read, and whether it is for good (the mirror, or the origin when none is expected). */
  async #bind(): Promise<{ storage: RegistryStorage | null; settled: boolean }> {
    if (this.#mirrorRegion !== undefined) {
      const mirror = await openRegistryMirror(this.#nc, this.#mirrorRegion)
      if (mirror) return { storage: mirror, settled: true }
    }
    const origin = await openRegistryStorage(this.#nc)
    return { storage: origin, settled: origin !== null && this.#mirrorRegion === undefined }
  }

  /** The storage to read now: the bound one, or the leader's while the mirror is stale. */
  #current(): Promise<RegistryStorage | null> {
    return this.#freshness?.stale ? this.#openLeader() : this.#open()
  }

  /** One record's value, or null when it (or the registry) does not exist. */
  async #get<S extends z.ZodType>(key: string, schema: S): Promise<z.infer<S> | null> {
    const s = await this.#current()
    return s ? ((await s.kv.get(key, schema))?.value ?? null) : null
  }

  getModule(id: string): Promise<ModuleRecord | null> {
    return this.#get(registryKeys.module(id), moduleRecordSchema)
  }

  async listModules(): Promise<ModuleRecord[]> {
    const s = await this.#current()
    if (!s) return []
    const keys = await s.kv.keys(`${registryKeys.modulePrefix}*`)
    const records = await Promise.all(keys.map((k) => s.kv.get(k, moduleRecordSchema)))
    return records
      .filter((r) => r !== null)
      .map((r) => r.value)
      .sort((a, b) => a.id.localeCompare(b.id))
  }

  getManifest(id: string, version: string, releaseId: number): Promise<ManifestRecord | null> {
    return this.#get(registryKeys.manifest(id, version, releaseId), manifestRecordSchema)
  }

  getNotes(id: string, version: string): Promise<NotesRecord | null> {
    return this.#get(registryKeys.notes(id, version), notesRecordSchema)
  }

  getRejection(id: string, version: string): Promise<RejectionRecord | null> {
    return this.#get(registryKeys.rejection(id, version), rejectionRecordSchema)
  }

  /** A stored zip as a stream, or null when the object does not exist. */
  async openZip(objectName: string): Promise<ObjectResult | null> {
    const s = await this.#open()
    return s ? s.zips.get(objectName) : null
  }
}
