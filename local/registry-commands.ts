/**
 * The operator's registry commands (`npm run swarm -- enroll | transfer`), audited: each writes an
 * `audit.*` record in the registry (who, when, from, to) and prints one JSON log line.
 *   enroll <owner/repo>              the repository may publish (the App must be installed on it)
 *   transfer <module> <owner/repo>   the module moves to that (enrolled) repository
 * The repository's id is resolved through GitHub's API as the App (never typed in by hand).
 */
import type { NatsConnection } from '@nats-io/nats-core'
import { openRegistryStorage } from '../backend/registry/buckets.ts'
import { RegistryWriter } from '../backend/registry/writer.ts'
import type { GitHubApp } from '../backend/releases/github-api.ts'

export interface OperatorContext {
  nc: NatsConnection
  github: GitHubApp
  /** Who runs the command (recorded in the audit record). */
  by: string
}

const writers = new WeakMap<NatsConnection, Promise<RegistryWriter>>()

/** The registry on this connection, bound once (several commands may share a connection). */
function registry(nc: NatsConnection): Promise<RegistryWriter> {
  let writer = writers.get(nc)
  if (!writer) {
    writer = openRegistryStorage(nc).then((storage) => {
      if (!storage) throw new Error('the registry does not exist yet: has a release service started?')
      return new RegistryWriter(storage)
    })
    writers.set(nc, writer)
  }
  return writer
}

const logLine = (msg: string, fields: Record<string, unknown>) =>
  console.log(JSON.stringify({ level: 'info', time: new Date().toISOString(), msg, ...fields }))

export async function enrollRepository(ctx: OperatorContext, fullName: string, o: { quiet?: boolean } = {}) {
  const repo = await ctx.github.resolveRepository(fullName)
  const writer = await registry(ctx.nc)
  const { record, created } = await writer.enroll({ id: repo.id, name: repo.full_name }, ctx.by)
  if (created || !o.quiet)
    logLine(created ? 'repository enrolled' : 'repository already enrolled', {
      repositoryId: repo.id,
      repository: repo.full_name,
      installation: repo.installationId,
      by: record.enrolledBy,
      at: record.enrolledAt,
    })
  return record
}

export async function transferModule(ctx: OperatorContext, moduleId: string, fullName: string) {
  const repo = await ctx.github.resolveRepository(fullName)
  const writer = await registry(ctx.nc)
  const moved = await writer.transferModule(moduleId, { id: repo.id, name: repo.full_name }, ctx.by)
  logLine('module transferred', { moduleId, from: moved.from, to: moved.to, by: ctx.by })
  return moved
}
