/**
 * Typed access to the registry's KV bucket: JSON values validated with zod on read, and the two
 * atomic writes every decision rests on — create-if-absent and compare-and-set on a revision.
 */
import type { KV } from '@nats-io/kv'
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream'
import type { z } from 'zod'

export interface Versioned<T> {
  value: T
  revision: number
}

export class CorruptRecordError extends Error {
  override name = 'CorruptRecordError'
}

/** True when a write lost a race: the key exists (create) or moved on (update). */
export function isWrongRevision(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  )
}

export class JsonKv {
  readonly kv: KV

  constructor(kv: KV) {
    this.kv = kv
  }

  /** The current value, or null when the key is absent or deleted. */
  async get<S extends z.ZodType>(key: string, schema: S): Promise<Versioned<z.infer<S>> | null> {
    const entry = await this.kv.get(key)
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return null
    let data: unknown
    try {
      data = entry.json()
    } catch {
      throw new CorruptRecordError(`${key}: not JSON`)
    }
    const parsed = schema.safeParse(data)
    if (!parsed.success) throw new CorruptRecordError(`${key}: ${parsed.error.message}`)
    return { value: parsed.data, revision: entry.revision }
  }

  /** Writes only if the key is absent; the new revision, or null when someone else has it. */
  async create(key: string, value: unknown): Promise<number | null> {
    try {
      return await this.kv.create(key, JSON.stringify(value))
    } catch (err) {
      if (isWrongRevision(err)) return null
      throw err
    }
  }

  /** Writes only if the key is still at `revision`; the new revision, or null when it moved on. */
  async update(key: string, value: unknown, revision: number): Promise<number | null> {
    try {
      return await this.kv.update(key, JSON.stringify(value), revision)
    } catch (err) {
      if (isWrongRevision(err)) return null
      throw err
    }
  }

  /** Create when absent (revision null), else compare-and-set. */
  async write(key: string, value: unknown, revision: number | null): Promise<number | null> {
    return revision === null ? this.create(key, value) : this.update(key, value, revision)
  }

  async put(key: string, value: unknown): Promise<number> {
    return this.kv.put(key, JSON.stringify(value))
  }

  async delete(key: string): Promise<void> {
    await this.kv.delete(key)
  }

  /** Keys matching a KV filter such as `module.*`. */
  async keys(filter: string): Promise<string[]> {
    const keys: string[] = []
    for await (const key of await this.kv.keys(filter)) keys.push(key)
    return keys
  }
}
