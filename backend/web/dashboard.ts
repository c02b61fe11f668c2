/**
 * `GET /api/dashboard?range=1h|3h|6h`: the figures of the operator's dashboard (shared/dashboard.ts),
 * read from the datacenter's Prometheus (PROMETHEUS_URL, on the swarm's overlay, which the edge cannot
 * reach) with a FIXED set of range queries, one per panel. Only `range` is accepted, from a fixed list;
 * any other parameter is refused, so nothing a client sends ever becomes part of a query.
 *
 * Bounded: all queries of one document share one deadline (PROMETHEUS_TIMEOUT_MS, then 504
 * metrics_timeout; kept under the edge's own deadline so the edge hears this answer); each answer is
 * cut off past MAX_ANSWER_BYTES and must be a range vector (else 503 metrics_unavailable, as when
 * Prometheus is down or not configured); at most MAX_SERIES series a panel. A document is kept
 * CACHE_TTL_MS per range, a failure FAILURE_TTL_MS, and concurrent requests for a range being asked
 * share that one round of queries (lru-cache's fetch), so a burst costs Prometheus one round.
 * The grid is aligned to the step, so every datacenter and every request in a step asks alike.
 * An error answer is its code and the table's fixed sentence (runtime/http-errors.ts), never the
 * detail: the edge shows it on a public page. The detail is logged, cut at MAX_LOGGED_DETAIL.
 */
import { Router } from 'express'
import { LRUCache } from 'lru-cache'
import { z } from 'zod'
import {
  dashboardPanels,
  dashboardRanges,
  dashboardRangeSchema,
  dashboardSchema,
  DEFAULT_DASHBOARD_RANGE,
  gridPoints,
  MAX_SERIES,
  type Dashboard,
  type DashboardPanel,
  type DashboardPanelData,
  type DashboardRange,
} from '#shared/dashboard.ts'
import { intVar } from '../runtime/config.ts'
import { HttpError } from '../runtime/http-errors.ts'
import type { Logger } from '../runtime/logger.ts'
import { PrometheusError, queryRange, type Matrix } from './dashboard-prometheus.ts'

/**
 * The longest deadline PROMETHEUS_TIMEOUT_MS may set. The edge gives the whole request
 * UPSTREAM_TIMEOUT_MS (5 s, wrangler.toml) including the tunnel's latency: past that it gives up on
 * this datacenter and the page shows a time-out instead of this service's own answer. A second under
 * it leaves the tunnel its share; the default (3 s) leaves two.
 */
export const PROMETHEUS_TIMEOUT_CEILING_MS = 4_000

export const dashboardConfig = {
  /** Prometheus's base URL (production: http://prometheus:9090 on the overlay). Unset: answers 503. */
  PROMETHEUS_URL: z
    .union([z.literal(''), z.url({ protocol: /^https?$/ })])
    .optional()
    .transform((v) => v || undefined),
  /** The deadline of one document's queries, all together; at most PROMETHEUS_TIMEOUT_CEILING_MS. */
  PROMETHEUS_TIMEOUT_MS: intVar(3_000, 100).pipe(z.number().max(PROMETHEUS_TIMEOUT_CEILING_MS)),
}

/** One Prometheus answer's largest size: ~24 series of 121 points is some 100 kB. */
export const MAX_ANSWER_BYTES = 1024 * 1024
/** A failure's detail is logged up to this length: Prometheus's own error text may be any size. */
const MAX_LOGGED_DETAIL = 500
/** How long a document is reused; the edge keeps its own copy ~30 s on top. */
const CACHE_TTL_MS = 15_000
/**
 * How long a failure is answered again without asking Prometheus: the page is public, and a
 * Prometheus that is down or slow should cost one round (and one log line) per range this often,
 * not one per visitor. The edge keeps failures ~10 s on top.
 */
const FAILURE_TTL_MS = 10_000

/** One round of queries: the document, or why Prometheus could not give it. */
type Round = { ok: true; doc: Dashboard } | { ok: false; error: PrometheusError }

/** Filesystems that are not a disk that fills: memory, overlays, kernel views. */
const realFilesystem =
  'fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|proc|sysfs|cgroup2?|autofs|fuse.*"'

interface PanelQuery {
  query: string
  /** The series' name on the chart, from its labels. */
  label: (metric: Record<string, string>) => string
}

const byLabel = (name: string) => (metric: Record<string, string>) => metric[name] ?? '(none)'

/** The only queries this endpoint ever runs. Names and labels: the shared contract of issue #14. */
export const panelQueries: Record<DashboardPanel, PanelQuery> = {
  requests: { query: 'sum by (dc) (rate(http_requests_total[5m]))', label: byLabel('dc') },
  errors: { query: 'sum by (dc) (rate(http_requests_total{status=~"5.."}[5m]))', label: byLabel('dc') },
  imageCacheHitRatio: {
    // A datacenter with lookups but no hit has no hit series: `or ... * 0` makes its ratio 0.
    query:
      '(sum by (dc) (rate(images_origin_cache_requests_total{result="hit"}[5m]))' +
      ' or sum by (dc) (rate(images_origin_cache_requests_total[5m])) * 0)' +
      ' / sum by (dc) (rate(images_origin_cache_requests_total[5m]))',
    label: byLabel('dc'),
  },
  consumerPending: {
    // Every service consuming reports the same figure from JetStream: the largest is the lag.
    query: 'max by (stream, consumer) (jetstream_consumer_messages{kind="pending"})',
    label: (m) => `${m.stream ?? '?'}/${m.consumer ?? '?'}`,
  },
  deadLetters: {
    // The counter has no series until a first dead letter: 0 then, as long as services are scraped.
    query: 'sum(increase(dead_letters_total[1h])) or 0 * max(up{job="services"})',
    label: () => 'past hour',
  },
  diskHeadroom: {
    query:
      `min by (nodename) (node_filesystem_avail_bytes{${realFilesystem}}` +
      ` / node_filesystem_size_bytes{${realFilesystem}}` +
      ' * on (instance) group_left (nodename) node_uname_info)',
    label: byLabel('nodename'),
  },
  jetstreamEnabled: { query: 'max by (server_name) (nats_jetstream_enabled)', label: byLabel('server_name') },
}

/** A matrix on the document's grid: one value per point, sorted by label, cut at MAX_SERIES. */
export function onGrid(
  matrix: Matrix,
  label: PanelQuery['label'],
  grid: { start: number; step: number; points: number }
): DashboardPanelData {
  const series = matrix
    .map(({ metric, values }) => {
      const row: Array<number | null> = Array.from({ length: grid.points }, () => null)
      for (const [t, v] of values) {
        const i = Math.round((t - grid.start) / grid.step)
        const value = Number(v)
        if (i >= 0 && i < grid.points && Number.isFinite(value)) row[i] = value
      }
      return { label: label(metric).slice(0, 200), values: row }
    })
    .sort((a, b) => a.label.localeCompare(b.label))
  return { series: series.slice(0, MAX_SERIES), truncated: series.length > MAX_SERIES }
}

async function buildDashboard(
  config: { url: string; timeoutMs: number; dc: string },
  range: DashboardRange,
  signal: AbortSignal
): Promise<Dashboard> {
  const { seconds, step } = dashboardRanges[range]
  const now = Date.now()
  const end = Math.floor(now / 1000 / step) * step
  const grid = { start: end - seconds, step, points: gridPoints(range) }
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(config.timeoutMs)])
  const panels = await Promise.all(
    dashboardPanels.map(async (id) => {
      const { query, label } = panelQueries[id]
      const matrix = await queryRange(
        config.url,
        { query, start: grid.start, end, step },
        { signal: deadline, maxBytes: MAX_ANSWER_BYTES }
      )
      return [id, onGrid(matrix, label, grid)] as const
    })
  )
  // Checked against the contract on the way out as the edge checks it on the way in.
  return dashboardSchema.parse({
    range,
    ...grid,
    generatedAt: now,
    dc: config.dc,
    panels: Object.fromEntries(panels),
  })
}

/** Only `range` may be given, once, from the list. */
function requestedRange(query: Record<string, unknown>): DashboardRange {
  const unknown = Object.keys(query).filter((name) => name !== 'range')
  if (unknown.length > 0)
    throw new HttpError('bad_request', `unknown query parameter ${JSON.stringify(unknown[0]!.slice(0, 40))}`)
  const range = dashboardRangeSchema.default(DEFAULT_DASHBOARD_RANGE).safeParse(query.range)
  if (!range.success) throw new HttpError('invalid_range')
  return range.data
}

export function dashboardApi(
  config: { PROMETHEUS_URL?: string | undefined; PROMETHEUS_TIMEOUT_MS: number; DC: string },
  log: Logger
): Router {
  const router = Router()
  const url = config.PROMETHEUS_URL
  const cache =
    url === undefined
      ? undefined
      : new LRUCache<DashboardRange, Round>({
          max: dashboardRangeSchema.options.length,
          ttl: CACHE_TTL_MS,
          fetchMethod: async (range, _stale, { signal, options }): Promise<Round> => {
            const prometheus = { url, timeoutMs: config.PROMETHEUS_TIMEOUT_MS, dc: config.DC }
            try {
              return { ok: true, doc: await buildDashboard(prometheus, range, signal) }
            } catch (error) {
              if (!(error instanceof PrometheusError)) throw error
              log.warn(
                { range, kind: error.kind, detail: error.message.slice(0, MAX_LOGGED_DETAIL) },
                'dashboard: Prometheus failed'
              )
              // Kept, as a document is, but for less long.
              options.ttl = FAILURE_TTL_MS
              return { ok: false, error }
            }
          },
        })

  if (cache === undefined) log.warn('dashboard: PROMETHEUS_URL is not set, /api/dashboard answers 503')

  // The answer carries the code and its table's fixed sentence only: what went wrong inside (an
  // address, Prometheus's own error text) is for the log, as the edge shows the answer to anyone.
  router.get('/api/dashboard', async (req, res) => {
    const range = requestedRange(req.query)
    if (cache === undefined) throw new HttpError('metrics_unavailable')
    const round = await cache.fetch(range)
    if (round === undefined) throw new HttpError('metrics_unavailable')
    if (!round.ok)
      throw new HttpError(round.error.kind === 'timeout' ? 'metrics_timeout' : 'metrics_unavailable')
    // The edge keeps its own copy for ~30 s; nothing between should keep one.
    res.setHeader('cache-control', 'no-store')
    res.json(round.doc)
  })
  return router
}
