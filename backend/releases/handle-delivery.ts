/**
 * One GitHub delivery from the GITHUB stream: decode it and act on its action.
 *   published / released / prereleased → package (pre-releases to the beta channel only)
 *   edited                             → release notes only
 *   deleted / unpublished              → the version leaves the listing (its files stay downloadable)
 *   anything else (created, …)         → acknowledged and ignored
 * An unreadable delivery is rejected (event) and dead-lettered; it can never succeed.
 */
import { githubHeaders } from '#shared/releases.ts'
import { publishRejected } from './events.ts'
import { parseReleasePayload, type ReleasePayload } from './github-payload.ts'
import { packageRelease, type PackagerDeps, type PackageOutcome } from './package.ts'
import { modulePurgePaths } from './purge.ts'
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

type Outcome = PackageOutcome | 'notes_updated' | 'deleted' | 'invalid'

export async function handleDelivery(deps: PackagerDeps, item: WorkItem): Promise<void> {
  const { msg } = item
  const delivery = msg.headers?.get(githubHeaders.delivery) || msg.headers?.get(githubHeaders.msgId) || null
  const event = msg.headers?.get(githubHeaders.event) || 'release'
  if (event !== 'release') {
    deps.metrics.deliveries.inc({ action: 'other', outcome: 'ignored' })
    return
  }
  const parsed = parseReleasePayload(msg.data)
  if (!parsed.ok) {
    deps.metrics.deliveries.inc({ action: 'other', outcome: 'invalid' })
    deps.metrics.rejections.inc({ code: 'payload_invalid' })
    await publishRejected(deps.js, {
      code: 'payload_invalid',
      reason: parsed.reason.slice(0, 2000),
      repositoryId: parsed.partial.repositoryId ?? null,
      repository: null,
      releaseId: parsed.partial.releaseId ?? null,
      tag: parsed.partial.tag ?? null,
      moduleId: null,
      version: null,
      releaseUrl: null,
      delivery,
      rejectedAt: new Date().toISOString(),
    })
    throw new PermanentFailure(`payload_invalid: ${parsed.reason}`)
  }
  const { payload } = parsed
  const action = payload.action
  let outcome: Outcome
  switch (action) {
    case 'published':
    case 'released':
    case 'prereleased':
      outcome = payload.release.draft
        ? 'ignored'
        : await packageRelease(
            deps,
            {
              payload,
              delivery,
              channel: action === 'prereleased' || payload.release.prerelease ? 'beta' : 'stable',
            },
            item
          )
      break
    case 'edited':
      outcome = await updateNotes(deps, payload)
      break
    case 'deleted':
    case 'unpublished':
      outcome = await removeRelease(deps, payload)
      break
    default:
      outcome = 'ignored'
  }
  deps.metrics.deliveries.inc({ action: knownActions.has(action) ? action : 'other', outcome })
  deps.log.info(
    {
      action,
      outcome,
      delivery,
      repository: payload.repository.full_name,
      release: payload.release.id,
      tag: payload.release.tag_name,
    },
    'delivery handled'
  )
}

/** `edited`: the stored notes of the release's version(s) follow the release body; nothing else changes. */
async function updateNotes(deps: PackagerDeps, payload: ReleasePayload): Promise<Outcome> {
  const moduleId = await deps.registry.repositoryModule(payload.repository.id)
  if (!moduleId) return 'ignored'
  const record = await deps.registry.getModule(moduleId)
  const entries = record?.value.versions.filter((v) => v.releaseId === payload.release.id) ?? []
  const notes = payload.release.body ?? ''
  let changed = false
  for (const entry of entries) {
    const current = await deps.registry.getNotes(moduleId, entry.version)
    if (current?.notes === notes) continue
    await deps.registry.putNotes(moduleId, entry.version, {
      notes,
      releaseId: payload.release.id,
      updatedAt: new Date().toISOString(),
    })
    changed = true
  }
  if (!changed) return 'ignored'
  const versions = entries.map((e) => e.version)
  deps.changed(modulePurgePaths(moduleId, versions))
  return 'notes_updated'
}

/** `deleted`: the release's versions leave the listing and the channels fall back to what remains. */
async function removeRelease(deps: PackagerDeps, payload: ReleasePayload): Promise<Outcome> {
  const moduleId = await deps.registry.repositoryModule(payload.repository.id)
  if (!moduleId) return 'ignored'
  const removed = await deps.registry.markReleaseDeleted(moduleId, payload.release.id)
  if (removed.length === 0) return 'ignored'
  const versions = removed.map((e) => e.version)
  deps.changed(modulePurgePaths(moduleId, versions))
  deps.log.info({ moduleId, versions }, 'release deleted from the listing')
  return 'deleted'
}
