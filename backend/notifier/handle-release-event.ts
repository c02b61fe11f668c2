/**
 * One release event from the RELEASES stream, as the notifier's consumer hands it over:
 *   releases.packaged → announced on the public webhook, exactly once (announce.ts)
 *   releases.rejected → logged for the operator, then a notice on the operator's webhook, exactly once
 *                       (never on the public channel); ANNOUNCE_REJECTIONS=false: logged only
 *   anything else     → PermanentFailure (dead-lettered: the stream carries nothing else)
 * A missing webhook acknowledges and counts the event as `disabled`; a malformed event is a
 * PermanentFailure. The announcement's key names what it announces, so redeliveries and the
 * notifiers of other datacenters find the same claim.
 */
import { packagedEventSchema, rejectedEventSchema } from '#shared/releases.ts'
import { subjects } from '#shared/subjects.ts'
import { versionToken } from '../registry/names.ts'
import type { JsonKv } from '../registry/kv-store.ts'
import type { Logger } from '../runtime/logger.ts'
import { decodeMessage } from '../runtime/messages.ts'
import { PermanentFailure, type WorkItem } from '../runtime/work-queue.ts'
import { announceOnce, type AnnounceOptions } from './announce.ts'
import type { DiscordWebhook } from './discord.ts'
import { announcementMessage, rejectionMessage } from './embed.ts'
import type { NotifierMetrics } from './metrics.ts'

export interface NotifierDeps {
  /** The notifier's bucket: one record per announcement. */
  kv: JsonKv
  /** The public channel; null: announcements disabled. */
  webhook: DiscordWebhook | null
  /** The operator's channel for rejection notices; null: rejections are only logged. */
  operatorWebhook: DiscordWebhook | null
  announceRejections: boolean
  options: AnnounceOptions
  metrics: NotifierMetrics
  log: Logger
}

const token = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100) || '_'

export async function handleReleaseEvent(deps: NotifierDeps, item: WorkItem): Promise<void> {
  const { kv, webhook, operatorWebhook, options, metrics: m, log } = deps
  const { msg } = item
  const kind =
    msg.subject === subjects.releasePackaged
      ? 'packaged'
      : msg.subject === subjects.releaseRejected
        ? 'rejected'
        : null
  if (!kind) throw new PermanentFailure(`unexpected subject ${msg.subject}`)
  let key: string
  let message: unknown
  let target = webhook
  if (kind === 'packaged') {
    const event = decodeMessage(msg, packagedEventSchema)
    if (!event.ok) throw new PermanentFailure(`malformed packaged event: ${event.message}`)
    const e = event.value
    key = `announce.${e.moduleId}.${versionToken(e.version)}.${e.channel}`
    message = announcementMessage(e)
  } else {
    const event = decodeMessage(msg, rejectedEventSchema)
    if (!event.ok) throw new PermanentFailure(`malformed rejected event: ${event.message}`)
    const e = event.value
    // The operator's record, whatever happens to the notice (the registry keeps the reason too).
    log.warn(
      {
        code: e.code,
        reason: e.reason,
        repository: e.repository,
        releaseId: e.releaseId,
        moduleId: e.moduleId,
        version: e.version,
      },
      'release rejected'
    )
    if (!deps.announceRejections) {
      m.announcements.inc({ kind, outcome: 'disabled' })
      return
    }
    target = operatorWebhook
    key = `notice.${e.repositoryId ?? '_'}.${e.releaseId ?? '_'}.${e.version ? versionToken(e.version) : '_'}.${e.code}.${e.delivery ? token(e.delivery) : `seq${msg.seq}`}`
    message = rejectionMessage(e)
  }
  if (!target) {
    m.announcements.inc({ kind, outcome: 'disabled' })
    return
  }
  try {
    const outcome = await announceOnce(kv, key, message, target, item, options, m)
    m.announcements.inc({ kind, outcome })
    log.info({ kind, key, outcome }, outcome === 'sent' ? 'announced on Discord' : 'already announced')
  } catch (err) {
    if (err instanceof PermanentFailure) {
      m.announcements.inc({ kind, outcome: 'failed' })
      log.error({ kind, key, err: err.message }, 'announcement failed permanently')
    }
    throw err
  }
}
