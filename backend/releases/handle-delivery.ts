/**
 * One GitHub delivery from the GITHUB stream: decode it, confirm it with GitHub (confirm.ts), and act
 * on its action with what GitHub answered, never with what the payload says:
 *   published / released / prereleased → package GitHub's release (its prerelease flag: beta only)
 *   edited                             → the release notes GitHub serves, nothing else
 *   deleted / unpublished              → the version leaves the listing (its files stay downloadable),
 *                                        only when GitHub no longer serves the release (404, or a draft)
 *   anything else (created, …)         → acknowledged and ignored
 * An unreadable delivery is rejected (event) and dead-lettered; it can never succeed. A delivery
 * GitHub does not confirm (not enrolled, wrong installation, no such release) is refused quietly.
 */
import type { JsMsg } from '@nats-io/jetstream'
import { githubHeaders, unconfirmedRejectionCodes } from '#shared/releases.ts'
import { confirmWithGitHub, logUnconfirmed, type Confirmed } from './confirm.ts'
import { Rejection } from './errors.ts'
import { parseReleasePayload } from './github-payload.ts'
import { packageRelease, type PackagerDeps, type PackageOutcome } from './package.ts'
import { modulePurgePaths } from './purge.ts'
import { rejectUnreadable } from './rejections.ts'
import { PermanentFailure, type WorkItem } from '../runtime/work-queue.ts'

const knownActions = new Set([
  'published',
  'released',
  'prereleased',
  'edited',
  'deleted',
  'unpublished',
  'created',
])

type Outcome = PackageOutcome | 'notes_updated' | 'deleted' | 'invalid' | 'refused' | 'not_deleted'

const packagingActions = new Set(['published', 'released', 'prereleased'])
const changingActions = new Set([...packagingActions, 'edited', 'deleted', 'unpublished'])

/**
 * A header's value; null when it is absent or empty. nats.js answers '' for an absent header, so
 * `get(…) ?? fallback` would never fall back.
 */
function header(msg: JsMsg, name: string): string | null {
  const value = msg.headers?.get(name)
  return value === undefined || value === '' ? null : value
}

export async function handleDelivery(deps: PackagerDeps, item: WorkItem): Promise<void> {
  const { msg } = item
  // GitHub's delivery id when the edge had one, else the message's own id (the body's hash).
  const delivery = header(msg, githubHeaders.delivery) ?? header(msg, githubHeaders.msgId)
  const event = header(msg, githubHeaders.event) ?? 'release'
  if (event !== 'release') {
    deps.metrics.deliveries.inc({ action: 'other', outcome: 'ignored' })
    return
  }
  const parsed = parseReleasePayload(msg.data)
  if (!parsed.ok) {
    deps.metrics.deliveries.inc({ action: 'other', outcome: 'invalid' })
    await rejectUnreadable(deps, parsed.partial, delivery, parsed.reason)
    throw new PermanentFailure(`payload_invalid: ${parsed.reason}`)
  }
  const { payload } = parsed
  const action = payload.action
  let outcome: Outcome = 'ignored'
  let confirmed: Confirmed | null = null
  if (changingActions.has(action) && !(packagingActions.has(action) && payload.release.draft)) {
    try {
      confirmed = await confirmWithGitHub(deps, payload)
    } catch (err) {
      if (!(err instanceof Rejection) || !unconfirmedRejectionCodes.has(err.code)) throw err
      logUnconfirmed(deps, payload, delivery, err)
      outcome = 'refused'
    }
  }
  if (confirmed) {
    const { repository, release } = confirmed
    switch (action) {
      case 'published':
      case 'released':
      case 'prereleased':
        if (!release) {
          logUnconfirmed(
            deps,
            payload,
            delivery,
            new Rejection(
              'release_not_found',
              `GitHub has no release ${payload.release.id} in repository ${repository.id} (${repository.full_name})`
            )
          )
          outcome = 'refused'
        } else if (release.draft) outcome = 'ignored'
        else
          outcome = await packageRelease(
            deps,
            {
              repositoryId: repository.id,
              repository: repository.full_name,
              release,
              installationId: confirmed.installationId,
              delivery,
              channel: release.prerelease ? 'beta' : 'stable',
            },
            item
          )
        break
      case 'edited':
        outcome = release ? await updateNotes(deps, repository.id, release.id, release.body ?? '') : 'ignored'
        break
      case 'deleted':
      case 'unpublished':
        // GitHub still serving the release (published) means the event is not true (forged or stale).
        outcome =
          release && !release.draft
            ? 'not_deleted'
            : await removeRelease(deps, repository.id, payload.release.id)
        break
    }
  }
  deps.metrics.deliveries.inc({ action: knownActions.has(action) ? action : 'other', outcome })
  deps.log.info(
    {
      action,
      outcome,
      delivery,
      repositoryId: payload.repository.id,
      repository: confirmed?.repository.full_name ?? null,
      release: payload.release.id,
      tag: confirmed?.release?.tag_name ?? null,
    },
    'delivery handled'
  )
}

/** `edited`: the stored notes of the release's version(s) become GitHub's; nothing else changes. */
async function updateNotes(
  deps: PackagerDeps,
  repositoryId: number,
  releaseId: number,
  notes: string
): Promise<Outcome> {
  const moduleId = await deps.registry.repositoryModule(repositoryId)
  if (!moduleId) return 'ignored'
  const record = await deps.registry.getModule(moduleId)
  const entries = record?.value.versions.filter((v) => v.releaseId === releaseId) ?? []
  let changed = false
  for (const entry of entries) {
    const current = await deps.registry.getNotes(moduleId, entry.version)
    if (current?.notes === notes) continue
    await deps.registry.putNotes(moduleId, entry.version, {
      notes,
      releaseId,
      updatedAt: new Date().toISOString(),
    })
    changed = true
  }
  if (!changed) return 'ignored'
  const versions = entries.map((e) => e.version)
  deps.changed(modulePurgePaths(moduleId, versions))
  return 'notes_updated'
}

/** `deleted` (confirmed: GitHub no longer serves it): the release's versions leave the listing. */
async function removeRelease(deps: PackagerDeps, repositoryId: number, releaseId: number): Promise<Outcome> {
  const moduleId = await deps.registry.repositoryModule(repositoryId)
  if (!moduleId) return 'ignored'
  const removed = await deps.registry.markReleaseDeleted(moduleId, releaseId)
  if (removed.length === 0) return 'ignored'
  const versions = removed.map((e) => e.version)
  deps.changed(modulePurgePaths(moduleId, versions))
  deps.log.info({ moduleId, versions }, 'release deleted from the listing')
  return 'deleted'
}
