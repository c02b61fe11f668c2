/**
 * The operator's dashboard: the one contract between the web service, which asks its datacenter's
 * Prometheus a FIXED set of range queries (backend/web/dashboard.ts: `GET /api/dashboard?range=`),
 * and the edge, which draws them as small charts (`/status/dashboard`, edge/status/dashboard.tsx).
 *
 * Compact on purpose: every series shares the document's time grid (`start`, `step`, `points`), so a
 * series is its label and one value per grid point (null where Prometheus has no sample, or the value
 * is not a finite number: a ratio of 0/0, say). Bounded so a document stays small whatever
 * Prometheus holds: at most MAX_SERIES series per panel (the rest dropped, `truncated` set).
 */
import { z } from 'zod'

/** The ranges a client may ask for, each with a step giving 60 to 120 points. */
export const dashboardRanges = {
  '1h': { seconds: 3_600, step: 60 },
  '3h': { seconds: 10_800, step: 120 },
  '6h': { seconds: 21_600, step: 300 },
} as const
export const dashboardRangeSchema = z.enum(['1h', '3h', '6h'])
export type DashboardRange = z.infer<typeof dashboardRangeSchema>
export const DEFAULT_DASHBOARD_RANGE: DashboardRange = '1h'

/** Points of a range's grid, both ends included. */
export const gridPoints = (range: DashboardRange) =>
  dashboardRanges[range].seconds / dashboardRanges[range].step + 1

/** Series kept per panel (a panel with more is cut, sorted by label, and says so). */
export const MAX_SERIES = 24
const MAX_POINTS = Math.max(...dashboardRangeSchema.options.map(gridPoints))

const seriesSchema = z.object({
  label: z.string().max(200),
  values: z.array(z.number().finite().nullable()).max(MAX_POINTS),
})
export type DashboardSeries = z.infer<typeof seriesSchema>

const panelSchema = z.object({
  series: z.array(seriesSchema).max(MAX_SERIES),
  /** More series matched than MAX_SERIES; the first ones by label are kept. */
  truncated: z.boolean(),
})
export type DashboardPanelData = z.infer<typeof panelSchema>

/** The panels, in the order the page shows them; each is one PromQL query (backend/web/dashboard.ts). */
const panelsSchema = z.object({
  /** Requests per second answered by each datacenter's services, by `dc`. */
  requests: panelSchema,
  /** 5xx answers per second, by `dc`. */
  errors: panelSchema,
  /** Share of source lookups the image service found in its origin cache, by `dc` (0..1). */
  imageCacheHitRatio: panelSchema,
  /** Messages waiting for each durable consumer (its lag), by `stream/consumer`. */
  consumerPending: panelSchema,
  /** Messages given up on and copied to the dead-letter stream in the past hour. */
  deadLetters: panelSchema,
  /** The fullest real filesystem of each node: the share still free (0..1), by node name (its dc). */
  diskHeadroom: panelSchema,
  /** 1 while JetStream is enabled on a nats-server, 0 once it has been switched off, by server name. */
  jetstreamEnabled: panelSchema,
})
export const dashboardPanels = panelsSchema.keyof().options
export type DashboardPanel = (typeof dashboardPanels)[number]

export const dashboardSchema = z
  .object({
    range: dashboardRangeSchema,
    /** The grid: `points` instants `step` seconds apart from `start` (Unix seconds). */
    start: z.number().int().nonnegative(),
    step: z.number().int().positive(),
    points: z.number().int().positive().max(MAX_POINTS),
    /** When the web service asked Prometheus (Unix milliseconds). */
    generatedAt: z.number().int().nonnegative(),
    /** The datacenter whose web service (and so whose Prometheus) answered. */
    dc: z.string().max(64),
    panels: panelsSchema,
  })
  .superRefine((doc, ctx) => {
    for (const id of dashboardPanels)
      doc.panels[id].series.forEach((series, i) => {
        if (series.values.length !== doc.points)
          ctx.addIssue({
            code: 'custom',
            path: ['panels', id, 'series', i, 'values'],
            message: `has ${series.values.length} values, the grid ${doc.points}`,
          })
      })
  })
export type Dashboard = z.infer<typeof dashboardSchema>

/**
 * The web service's errors for the dashboard (backend/runtime/http-errors.ts): Prometheus is not
 * configured, cannot be reached or answered something unusable (503), or did not answer in time (504).
 * Not the datacenter's fault: the edge asks the next datacenter without marking this one unhealthy.
 */
export const dashboardErrorCodes = ['metrics_unavailable', 'metrics_timeout'] as const

/**
 * A body as text, read no further than `maxBytes`: null, with the rest left unread, when its declared
 * length is larger or it runs past it while arriving (a tunnel or a compressed answer may declare none).
 * Both sides read the other's answer with it: the web service Prometheus's, the edge the web service's.
 */
export async function boundedText(res: Response, maxBytes: number): Promise<string | null> {
  if (Number(res.headers.get('content-length') ?? NaN) > maxBytes) {
    await res.body?.cancel()
    return null
  }
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let seen = 0
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    // Typed `any` by Node's fetch; a fetched body's chunks are bytes.
    const chunk: unknown = read.value
    if (!(chunk instanceof Uint8Array)) throw new TypeError('a body chunk is not bytes')
    seen += chunk.byteLength
    if (seen > maxBytes) {
      await reader.cancel()
      return null
    }
    chunks.push(chunk)
  }
  const bytes = new Uint8Array(seen)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.byteLength
  }
  return new TextDecoder().decode(bytes)
}
