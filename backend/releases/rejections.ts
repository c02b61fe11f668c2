/**
 * Refusing a release: the one place a `rejected` event is built, and the two ways one goes out.
 *
 *   rejectUnreadable   a delivery too broken to name its release (payload_invalid): counted and
 *                      published with what identifies it, if anything; nothing is stored.
 *   announceRejection  a release refused while packaging: counted, logged, stored under the
 *                      repository's own module when that is known, and published once per
 *                      (repository, release, version, code), even for a replay that comes back after
 *                      the stream's duplicate window (the registry's notice marks).
 *
 * A delivery GitHub does not confirm is refused without an event (confirm.ts, `logUnconfirmed`).
 */
import type { JetStreamClient } from '@nats-io/jetstream'
import type { RejectedEvent } from '#shared/releases.ts'
import type { Logger } from '../runtime/logger.ts'
import { isVersion } from '../registry/names.ts'
import type { RegistryWriter } from '../registry/writer.ts'
import { Rejection } from './errors.ts'
import { publishRejected } from './events.ts'
import type { GitHubRelease } from './github-api.ts'
import type { ReleaseMetrics } from './metrics.ts'

/** The `reason` field's limit (shared/releases.ts `rejectedEventSchema`). */
const REASON_MAX = 2000

/** What a `rejected` event says about the refused release: null where it is not known. */
export type RefusedRelease = Pick<
  RejectedEvent,
  'repositoryId' | 'repository' | 'releaseId' | 'tag' | 'releaseUrl' | 'delivery' | 'moduleId' | 'version'
>

/** The `rejected` event for `rejection` of `release`. */
export function rejectedEvent(
  release: RefusedRelease,
  rejection: Rejection,
  rejectedAt: string
): RejectedEvent {
  return {
    code: rejection.code,
    reason: rejection.message.slice(0, REASON_MAX),
    ...release,
    rejectedAt,
  }
}

export interface RejectionDeps {
  js: JetStreamClient
  registry: RegistryWriter
  log: Logger
  metrics: ReleaseMetrics
}

/** A delivery whose payload is not a release event: named by what could still be read of it. */
export async function rejectUnreadable(
  deps: Pick<RejectionDeps, 'js' | 'metrics'>,
  partial: Partial<{ repositoryId: number; releaseId: number; tag: string }>,
  delivery: string | null,
  reason: string
): Promise<void> {
  const rejection = new Rejection('payload_invalid', reason)
  deps.metrics.rejections.inc({ code: rejection.code })
  await publishRejected(
    deps.js,
    rejectedEvent(
      {
        repositoryId: partial.repositoryId ?? null,
        repository: null,
        releaseId: partial.releaseId ?? null,
        tag: partial.tag ?? null,
        moduleId: null,
        version: null,
        releaseUrl: null,
        delivery,
      },
      rejection,
      new Date().toISOString()
    )
  )
}

/** The release a packaging run refuses, as GitHub confirmed it. */
export interface ReleaseRefused {
  repositoryId: number
  repository: string
  release: Pick<GitHubRelease, 'id' | 'tag_name' | 'html_url'>
  delivery: string | null
}

/**
 * Stores the rejection (under `moduleId`, when the repository's module is known and the version is
 * one), publishes `rejected` once, counts and logs it.
 */
export async function announceRejection(
  deps: RejectionDeps,
  ev: ReleaseRefused,
  at: { moduleId: string | null; version: string | null },
  rejection: Rejection
): Promise<void> {
  const rejectedAt = new Date().toISOString()
  const version = at.version !== null && isVersion(at.version) ? at.version : null
  const noticeKey = [ev.repositoryId, ev.release.id, version ?? '-', rejection.code] as const
  deps.metrics.rejections.inc({ code: rejection.code })
  deps.log.warn(
    {
      code: rejection.code,
      reason: rejection.message,
      repository: ev.repository,
      release: ev.release.id,
      tag: ev.release.tag_name,
    },
    'release rejected'
  )
  // A replay of a refused release (beyond the stream's duplicate window) tells nobody again.
  if (await deps.registry.noticeSent(...noticeKey)) return
  if (at.moduleId && version)
    await deps.registry.putRejection(at.moduleId, version, {
      code: rejection.code,
      reason: rejection.message,
      repositoryId: ev.repositoryId,
      releaseId: ev.release.id,
      tag: ev.release.tag_name,
      delivery: ev.delivery,
      rejectedAt,
    })
  await publishRejected(
    deps.js,
    rejectedEvent(
      {
        repositoryId: ev.repositoryId,
        repository: ev.repository,
        releaseId: ev.release.id,
        tag: ev.release.tag_name,
        moduleId: at.moduleId,
        version,
        releaseUrl: ev.release.html_url,
        delivery: ev.delivery,
      },
      rejection,
      rejectedAt
    )
  )
  await deps.registry.markNoticeSent(...noticeKey)
}
