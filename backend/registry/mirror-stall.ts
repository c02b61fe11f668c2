/**
 * Telling a region's read mirror of the registry that no longer follows Europe's (issue #15), for the
 * release service's watchdog (mirror-watchdog.ts) and the web service's reads (mirror-freshness.ts).
 *
 * A mirror is judged by its last sequence against the origin's, the origin sampled first: a mirror that
 * follows is level with that at most looks, a broken one is behind at every look. One behind at every
 * look for `stallAfterMs` counts as stalled; a mirror younger than that is never judged.
 *
 * Why not the mirror's own `active` and `lag`: nats-server before 2.12 checks a mirrored message's
 * `Nats-Expected-Last-Subject-Sequence` (which every compare-and-set write of the KV carries) against the
 * mirror's own copy, drops the message when they differ, and from then on stores the rest one sequence
 * off, so that every later compare-and-set write is dropped too: the mirror keeps taking plain writes,
 * its heartbeats keep `active` fresh and `lag` reads 0, but the module records it serves stop changing.
 * Any gap starts it (seen after a partition of the origin's leader), and a fresh mirror of a bucket
 * whose keys were updated that way starts so. Fixed by nats-server 48fecd284 ("Remove expected headers
 * when mirroring"), in 2.12.0.
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream'
import { kvStreamName, registryBuckets, registryMirrorBucket } from '#shared/releases.ts'
import { intVar } from '../runtime/config.ts'
import type { Logger } from '../runtime/logger.ts'

/** The release and web services' settings for their looks at the mirrors. */
export const mirrorCheckConfig = {
  /** How often a mirror is compared with the registry. */
  REGISTRY_MIRROR_CHECK_MS: intVar(10_000, 100),
  /** How long a mirror may be behind the registry at every look before it counts as stalled. */
  REGISTRY_MIRROR_STALL_MS: intVar(30_000, 1_000),
}

export interface MirrorSample {
  stream: string
  created: string
  lastSeq: number
  originLastSeq: number
}

/** Both streams' last sequences, or why they could not be had. */
export async function sampleMirror(
  jsm: JetStreamManager,
  region: string
): Promise<MirrorSample | 'missing' | 'unreachable'> {
  const stream = kvStreamName(registryMirrorBucket(region))
  let origin
  try {
    origin = await jsm.streams.info(kvStreamName(registryBuckets.kv))
  } catch {
    return 'unreachable'
  }
  try {
    const mirror = await jsm.streams.info(stream)
    return {
      stream,
      created: mirror.created,
      lastSeq: mirror.state.last_seq,
      originLastSeq: origin.state.last_seq,
    }
  } catch (err) {
    return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound
      ? 'missing'
      : 'unreachable'
  }
}

export interface MirrorJudgement {
  behind: number
  /** How long it has been behind the origin at every look (0: level at the last one). */
  behindForMs: number
  stalled: boolean
}

export class MirrorStallJudge {
  readonly #stallAfterMs: number
  readonly #seen = new Map<string, { created: string; behindSince?: number }>()

  constructor(stallAfterMs: number) {
    this.#stallAfterMs = stallAfterMs
  }

  observe(region: string, sample: MirrorSample, now: number): MirrorJudgement {
    const behind = Math.max(0, sample.originLastSeq - sample.lastSeq)
    const last = this.#seen.get(region)
    const seen = last && last.created === sample.created ? last : { created: sample.created }
    if (behind === 0) delete seen.behindSince
    else seen.behindSince ??= now
    this.#seen.set(region, seen)
    const behindForMs = seen.behindSince === undefined ? 0 : now - seen.behindSince
    const young = now - Date.parse(sample.created) < this.#stallAfterMs
    return { behind, behindForMs, stalled: !young && behindForMs >= this.#stallAfterMs }
  }
}

/**
 * Runs `look` every `intervalMs`, one at a time (a look still running when the next is due is not
 * doubled), logging a failed one; `stop` ends it and waits for the look in flight.
 */
export function lookEvery(
  intervalMs: number,
  look: () => Promise<unknown>,
  log: Logger
): { stop: () => Promise<void> } {
  let running: Promise<unknown> | undefined
  const timer = setInterval(() => {
    running ??= look()
      .catch((err: unknown) =>
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'mirror check failed')
      )
      .finally(() => (running = undefined))
  }, intervalMs)
  timer.unref()
  return {
    async stop() {
      clearInterval(timer)
      await running
    },
  }
}
