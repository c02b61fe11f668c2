/**
 * Exactly one Discord message per announcement, across redeliveries, restarts, partitions and the
 * notifiers of every datacenter, recorded in the notifier's KV bucket:
 *
 *   absent/idle ──create or compare-and-set──▶ sending (lease, owner) ──Discord 2xx──▶ sent (message id)
 *                                                  │ 429 / 5xx / network: back to idle, retry
 *                                                  │ 401 / 404 / 400: deleted, dead-lettered
 *
 * The claim is taken immediately before the HTTP call and given up on any definite failure. After a
 * 2xx the owner records `sent` until it succeeds: a notifier cut off from the bucket's quorum (a
 * partition, its server's full disk) records it once it is back. So another notifier leaves an expired
 * `sending` claim alone for `takeoverAfterMs` more (longer than the partitions we ride out), and only
 * then sends again. Only an owner that died between Discord's 2xx and its record leaves the outcome
 * unknown; we chose that side of the edge: at-least-once inside that window (a duplicate only if
 * Discord accepted the message and the notifier died in the few milliseconds before recording
 * `sent`), never a lost announcement, at the price of announcing up to takeoverAfterMs late then.
 * Everywhere else: exactly once — concurrent notifiers serialise on the claim, and `sent` is final.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import type { JsonKv } from '../registry/kv-store.ts'
import { PermanentFailure, RetryLater, type WorkItem } from '../runtime/work-queue.ts'
import type { DiscordResult, DiscordWebhook } from './discord.ts'
import type { NotifierMetrics } from './metrics.ts'

export const announcementRecordSchema = z.strictObject({
  state: z.enum(['idle', 'sending', 'sent']),
  owner: z.string(),
  leaseUntil: z.number(),
  messageId: z.string().nullable(),
  attempts: z.number().int(),
  updatedAt: z.string(),
})
export type AnnouncementRecord = z.infer<typeof announcementRecordSchema>

export interface AnnounceOptions {
  owner: string
  /** Longer than one HTTP call can take. */
  leaseMs: number
  /**
   * How long an expired claim of another notifier is left alone: its owner may have been answered 2xx
   * and be cut off from the bucket, recording `sent` once back. Longer than the partitions we ride out.
   */
  takeoverAfterMs: number
  /** A rate limit up to this long is waited out in place; a longer one retries the message later. */
  maxInlineWaitMs: number
  /** Immediate retries of a 5xx or network failure before the message is retried later. */
  inlineRetries: number
}

/** Waits `ms`, keeping the message alive. */
async function waitFor(ms: number, item: WorkItem): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    item.keepAlive()
    await sleep(Math.min(1_000, end - Date.now()))
  }
}

export async function announceOnce(
  kv: JsonKv,
  key: string,
  message: unknown,
  webhook: DiscordWebhook,
  item: WorkItem,
  o: AnnounceOptions,
  metrics: NotifierMetrics
): Promise<'sent' | 'duplicate'> {
  let failures = 0
  const waitUntil = Date.now() + 2 * o.leaseMs
  // Nearly every announcement is new: the first look assumes no record, so the claim is one create
  // (refused when a record exists, which the next look reads).
  for (let look = 0; ; look++) {
    if (webhook.disabledReason) throw new PermanentFailure(`webhook disabled: ${webhook.disabledReason}`)
    const current = look === 0 ? null : await kv.get(key, announcementRecordSchema)
    const record = current?.value
    if (record?.state === 'sent') return 'duplicate'
    if (
      record?.state === 'sending' &&
      record.owner !== o.owner &&
      record.leaseUntil + o.takeoverAfterMs > Date.now()
    ) {
      // Another notifier is sending it, or sent it and cannot record that yet: its outcome decides.
      if (Date.now() > waitUntil) throw new RetryLater(`${key} is being sent by ${record.owner}`, o.leaseMs)
      item.keepAlive()
      await sleep(200)
      continue
    }
    const wait = webhook.waitMs()
    if (wait > o.maxInlineWaitMs) throw new RetryLater(`rate limited for ${wait} ms`, wait)
    if (wait > 0) {
      await waitFor(wait, item)
      continue
    }

    const attempts = (record?.attempts ?? 0) + 1
    const claim: AnnouncementRecord = {
      state: 'sending',
      owner: o.owner,
      leaseUntil: Date.now() + o.leaseMs,
      messageId: null,
      attempts,
      updatedAt: new Date().toISOString(),
    }
    const revision = await kv.write(key, claim, current?.revision ?? null)
    if (revision === null) continue // someone else moved first: look again

    const result: DiscordResult = await webhook.execute(message)
    metrics.discordResponses.inc({ status: result.status === null ? 'network' : String(result.status) })
    if (result.kind === 'sent') {
      const sent = {
        ...claim,
        state: 'sent' as const,
        leaseUntil: 0,
        messageId: result.messageId,
        updatedAt: new Date().toISOString(),
      }
      await recordSent(kv, key, sent, revision, item, claim.leaseUntil + o.takeoverAfterMs)
      return 'sent'
    }
    // A definite "not sent": give the claim back before anything else.
    if (result.kind === 'permanent') {
      await kv.delete(key).catch(() => undefined)
      throw new PermanentFailure(
        `Discord answered ${result.status}: ${result.message} (code ${result.code ?? '-'})`
      )
    }
    await kv.update(
      key,
      { ...claim, state: 'idle', leaseUntil: 0, updatedAt: new Date().toISOString() },
      revision
    )
    if (result.kind === 'rate_limited') {
      metrics.rateLimited.inc({ scope: result.scope })
      continue // the webhook now knows how long to wait
    }
    failures++
    if (failures > o.inlineRetries) throw new Error(`Discord failed ${failures} times: ${result.message}`)
    await waitFor(250 * 2 ** (failures - 1), item)
  }
}

/**
 * Records `sent` after Discord's 2xx, retrying while the bucket cannot be reached (keeping the message
 * alive), until `deadline`: the moment another notifier may take the claim over. It is recorded even if
 * the claim was taken over meanwhile (the record must say the message went out).
 */
async function recordSent(
  kv: JsonKv,
  key: string,
  sent: AnnouncementRecord,
  revision: number,
  item: WorkItem,
  deadline: number
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      if ((await kv.update(key, sent, revision)) === null) await kv.put(key, sent)
      return
    } catch (error) {
      if (Date.now() >= deadline) throw error
      item.keepAlive()
      await sleep(Math.min(5_000, 250 * 2 ** Math.min(attempt, 5)))
    }
  }
}
