/**
 * What vantages tell each other and the request path (issue #16): a vantage's view is its own
 * per-datacenter health (the hysteresis of steering/health-state.ts, from its own probes and the
 * passive failures of its own requesters), and a snapshot is how each datacenter stands across the
 * views, as one vantage answers it.
 *
 * A view crosses from one object to another (which may run another version of the code during a
 * deploy), so it is validated where it is taken (`vantageViewSchema`).
 */
import { z } from 'zod'
import { datacenterIdSchema, regionIdSchema } from '#shared/catalogue.ts'
import type { DatacenterHealth, StateChange } from '../steering/health-state.ts'

export interface VantageView {
  /** The vantage whose view this is: its region's id. */
  vantage: string
  /**
   * When its vantage last observed anything (a round of probes, a passive report): how fresh it is.
   * 0: never.
   */
  at: number
  /** Increases with every change at its vantage: of two copies with the same `at`, the higher is newer. */
  version: number
  datacenters: Record<string, DatacenterHealth>
}

/** How the fresh views stand on one datacenter; a view that is stale or has not observed it abstains. */
export interface Votes {
  up: number
  down: number
  abstain: number
}

export interface HealthSnapshot {
  /** Increases with every change at the vantage that answered: isolates keep the newest they have seen. */
  version: number
  at: number
  /** The vantage that answered ("" when the object answering is no current vantage: it has no view). */
  vantage: string
  /**
   * The verdict per datacenter (vantages/verdict.ts) as the health state readers know: up, degraded,
   * drained and since are the majority's; the counters and last probe, the answering vantage's own.
   */
  datacenters: Record<string, DatacenterHealth>
  /** Per datacenter: how the views voted. */
  votes: Record<string, Votes>
  /** Every current vantage's view as the answering one last heard it; null when it never has. */
  views: Record<string, VantageView | null>
  /** Most recent first: changes of the verdict, and of the answering vantage's own view (`vantage` set). */
  changes: StateChange[]
}

const probeResultSchema = z.object({
  at: z.number(),
  ok: z.boolean(),
  degraded: z.boolean().optional(),
  latencyMs: z.number().optional(),
  error: z.string().max(2_000).optional(),
})

const datacenterHealthSchema = z.object({
  up: z.boolean(),
  degraded: z.boolean(),
  drained: z.boolean(),
  drainedAt: z.number().optional(),
  failures: z.number().int().min(0),
  successes: z.number().int().min(0),
  lastProbe: probeResultSchema.optional(),
  since: z.number(),
})

export const vantageViewSchema = z.object({
  vantage: regionIdSchema,
  at: z.number(),
  version: z.number().int().min(0),
  datacenters: z.record(datacenterIdSchema, datacenterHealthSchema),
}) satisfies z.ZodType<VantageView>

/** Whether `offered` is a newer copy of a view than `known`. */
export const isNewer = (offered: VantageView, known: VantageView | undefined): boolean =>
  !known || offered.at > known.at || (offered.at === known.at && offered.version > known.version)
