/**
 * Reading the registry (the web service's module API). Binds lazily: until the release service has
 * created the buckets, the registry is simply empty.
 */
import type { NatsConnection } from '@nats-io/nats-core'
import type { ObjectResult } from '@nats-io/obj'
import type { z } from 'zod'
import { openRegistryStorage, type RegistryStorage } from './buckets.ts'
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

/** How long "no registry yet" is believed before binding is tried again. */
const RETRY_MISSING_MS = 2_000

export class RegistryReader {
  readonly #nc: NatsConnection
  #storage: Promise<RegistryStorage | null> | undefined
  #missingSince = 0

  constructor(nc: NatsConnection) {
    this.#nc = nc
  }

  async #open(): Promise<RegistryStorage | null> {
    if (
      this.#storage === undefined ||
      (this.#missingSince && Date.now() - this.#missingSince > RETRY_MISSING_MS)
    ) {
      this.#missingSince = 0
      this.#storage = openRegistryStorage(this.#nc).then(
        (s) => {
          if (!s) this.#missingSince = Date.now()
          return s
        },
        (err: unknown) => {
          this.#storage = undefined
          throw err
        }
      )
    }
    return this.#storage
  }

  /** One record's value, or null when it (or the registry) does not exist. */
  async #get<S extends z.ZodType>(key: string, schema: S): Promise<z.infer<S> | null> {
    const s = await this.#open()
    return s ? ((await s.kv.get(key, schema))?.value ?? null) : null
  }

  getModule(id: string): Promise<ModuleRecord | null> {
    return this.#get(registryKeys.module(id), moduleRecordSchema)
  }

  async listModules(): Promise<ModuleRecord[]> {
    const s = await this.#open()
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
