/**
 * `/status/dashboard`: the few figures an operator needs, each a small line chart drawn on the server
 * as inline SVG (hono/jsx, so every label is escaped), from the document of shared/dashboard.ts. No
 * script and no external asset: the page works without JavaScript, and reloads itself every minute
 * with a meta refresh. Each chart is an `<svg data-panel>`, each series a `<path data-series>` with
 * gaps where Prometheus had no value; the legend gives each series' latest value.
 *
 * The paths are a handful of `M`/`L` commands over at most ~120 points: a charting library would
 * bring more than it draws here.
 */
import type { FC } from 'hono/jsx'
import {
  dashboardPanels,
  dashboardRangeSchema,
  type Dashboard,
  type DashboardPanel,
  type DashboardRange,
  type DashboardSeries,
} from '#shared/dashboard.ts'
import type { ErrorCode } from '../http/errors.ts'

type Unit = 'per-second' | 'share' | 'count' | 'on-off'

interface PanelSpec {
  title: string
  unit: Unit
  /** A line drawn across the chart, where an alert starts caring. */
  threshold?: { value: number; label: string }
}

const panelSpecs: Record<DashboardPanel, PanelSpec> = {
  requests: { title: 'Requests per datacenter (/s)', unit: 'per-second' },
  errors: { title: '5xx errors per datacenter (/s)', unit: 'per-second' },
  imageCacheHitRatio: { title: 'Image origin cache hit ratio', unit: 'share' },
  consumerPending: { title: 'Release pipeline lag (pending)', unit: 'count' },
  deadLetters: { title: 'Dead letters in the past hour', unit: 'count' },
  // DiskSpaceLow fires above 80 % used (deploy/monitoring/alerts.yml).
  diskHeadroom: {
    title: 'Disk headroom per node (free)',
    unit: 'share',
    threshold: { value: 0.2, label: 'DiskSpaceLow' },
  },
  jetstreamEnabled: { title: 'JetStream enabled per server', unit: 'on-off' },
}

const palette = ['#2563eb', '#16a34a', '#d97706', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d']

/** Chart geometry, in SVG units (the chart scales to its box). */
const W = 360
const H = 150
const PAD = { left: 44, right: 8, top: 10, bottom: 20 }
const plotW = W - PAD.left - PAD.right
const plotH = H - PAD.top - PAD.bottom

/** A number as the legend and axis show it: at most three significant figures, no trailing zeros. */
export function formatValue(value: number, unit: Unit): string {
  if (unit === 'share') return `${Number((value * 100).toFixed(1))} %`
  if (unit === 'on-off') return value >= 1 ? 'on' : 'off'
  const abs = Math.abs(value)
  const digits = abs >= 100 || Number.isInteger(value) ? 0 : abs >= 10 ? 1 : 2
  return String(Number(value.toFixed(digits)))
}

/** The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten) at or above x. */
export function roundUp(x: number): number {
  const power = 10 ** Math.floor(Math.log10(x))
  const step = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((m) => m * power >= x * (1 - 1e-9)) ?? 10
  return step * power
}

/** The top of the y axis: 1 for shares and flags, else a round number a little above the largest value. */
function yMax(series: DashboardSeries[], unit: Unit): number {
  if (unit === 'share' || unit === 'on-off') return 1
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)))
  return max <= 0 ? 1 : roundUp(max * 1.05)
}

/** `d` of one series: one `M` per run of values, a gap wherever a value is missing. */
export function seriesPath(values: Array<number | null>, top: number): string {
  const x = (i: number) => PAD.left + (values.length > 1 ? (i / (values.length - 1)) * plotW : plotW / 2)
  const y = (v: number) => PAD.top + plotH - (Math.min(Math.max(v, 0), top) / top) * plotH
  const commands: string[] = []
  let drawing = false
  values.forEach((v, i) => {
    if (v === null) return void (drawing = false)
    commands.push(`${drawing ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)}`)
    drawing = true
  })
  return commands.join('')
}

const lastValue = (values: Array<number | null>) => values.findLast((v) => v !== null) ?? null

/** "-1h", "-30m" and "now" under the chart. */
function timeLabels(doc: Dashboard): Array<{ x: number; text: string; anchor: string }> {
  const minutes = ((doc.points - 1) * doc.step) / 60
  const ago = (m: number) => (m >= 60 && m % 60 === 0 ? `-${m / 60}h` : `-${m}m`)
  return [
    { x: PAD.left, text: ago(minutes), anchor: 'start' },
    { x: PAD.left + plotW / 2, text: ago(minutes / 2), anchor: 'middle' },
    { x: PAD.left + plotW, text: 'now', anchor: 'end' },
  ]
}

const Chart: FC<{ doc: Dashboard; id: DashboardPanel }> = ({ doc, id }) => {
  const spec = panelSpecs[id]
  const { series, truncated } = doc.panels[id]
  const top = yMax(series, spec.unit)
  const yOf = (v: number) => PAD.top + plotH - (v / top) * plotH
  const ticks = spec.unit === 'on-off' ? [0, 1] : [0, top / 2, top]
  return (
    <section class="panel" data-panel={id}>
      <h2>{spec.title}</h2>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={spec.title} data-panel={id}>
        {ticks.map((t) => (
          <>
            <line class="grid" x1={PAD.left} x2={W - PAD.right} y1={yOf(t)} y2={yOf(t)} />
            <text class="axis" x={PAD.left - 4} y={yOf(t) + 3} text-anchor="end">
              {formatValue(t, spec.unit)}
            </text>
          </>
        ))}
        {timeLabels(doc).map((label) => (
          <text class="axis" x={label.x} y={H - 4} text-anchor={label.anchor}>
            {label.text}
          </text>
        ))}
        {spec.threshold && (
          <line
            class="threshold"
            x1={PAD.left}
            x2={W - PAD.right}
            y1={yOf(spec.threshold.value)}
            y2={yOf(spec.threshold.value)}
          >
            <title>{`${spec.threshold.label}: ${formatValue(spec.threshold.value, spec.unit)}`}</title>
          </line>
        )}
        {spec.threshold && (
          <text class="threshold-label" x={W - PAD.right} y={yOf(spec.threshold.value) - 3} text-anchor="end">
            {spec.threshold.label}
          </text>
        )}
        {series.map((s, i) => (
          <path
            class="series"
            data-series={s.label}
            d={seriesPath(s.values, top)}
            stroke={palette[i % palette.length]}
          />
        ))}
        {series.length === 0 && (
          <text class="empty" x={PAD.left + plotW / 2} y={PAD.top + plotH / 2} text-anchor="middle">
            no data
          </text>
        )}
      </svg>
      <ul class="legend">
        {series.map((s, i) => {
          const last = lastValue(s.values)
          return (
            <li data-series={s.label}>
              <span class="swatch" style={{ background: palette[i % palette.length] }} />
              {s.label} <b>{last === null ? '-' : formatValue(last, spec.unit)}</b>
            </li>
          )
        })}
        {truncated && <li class="muted">more series not shown</li>}
      </ul>
    </section>
  )
}

const RangeLinks: FC<{ current: DashboardRange }> = ({ current }) => (
  <nav class="ranges">
    {dashboardRangeSchema.options.map((range) =>
      range === current ? <b>{range}</b> : <a href={`/status/dashboard?range=${range}`}>{range}</a>
    )}
  </nav>
)

const Shell: FC<{ range: DashboardRange; children?: unknown }> = ({ range, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta http-equiv="refresh" content="60" />
      <title>vtta.io dashboard</title>
      <style dangerouslySetInnerHTML={{ __html: css }} />
    </head>
    <body>
      <header>
        <h1>vtta.io dashboard</h1>
        <RangeLinks current={range} />
        <a href="/status">status</a>
      </header>
      {children}
    </body>
  </html>
)

const utc = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`

/** The page with its charts. */
export async function dashboardPage(doc: Dashboard): Promise<string> {
  const page = (
    <Shell range={doc.range}>
      <p class="muted" id="source">
        From Prometheus in {doc.dc}, as of{' '}
        <time datetime={new Date(doc.generatedAt).toISOString()}>{utc(doc.generatedAt)}</time>; one point
        every {doc.step >= 60 ? `${doc.step / 60} min` : `${doc.step} s`}. Reloads every minute. Data:{' '}
        <a href={`/status/dashboard.json?range=${doc.range}`}>/status/dashboard.json</a>.
      </p>
      <div class="panels">
        {dashboardPanels.map((id) => (
          <Chart doc={doc} id={id} />
        ))}
      </div>
    </Shell>
  )
  return `<!doctype html>${await page}`
}

/**
 * Why no figures could be had, as a visitor is told it (page and JSON alike): the code and this one
 * fixed sentence. What each datacenter answered stays in the edge's log (withFailover lists every
 * attempt), as the page is public.
 */
export const dashboardFailureCodes = [
  'metrics_unavailable',
  'datacenter_unreachable',
  'datacenter_timeout',
] as const satisfies readonly ErrorCode[]
export type DashboardFailure = (typeof dashboardFailureCodes)[number]
export const dashboardFailures: Record<DashboardFailure, string> = {
  metrics_unavailable: 'No datacenter could read its metrics from Prometheus.',
  datacenter_unreachable: 'No datacenter answered.',
  datacenter_timeout: 'No datacenter answered in time.',
}

/** The page when no figures could be had: the fixed sentence, and the code. */
export async function dashboardErrorPage(range: DashboardRange, code: DashboardFailure): Promise<string> {
  const page = (
    <Shell range={range}>
      <p id="error" class="error" data-code={code}>
        {dashboardFailures[code]} <code>{code}</code>
      </p>
    </Shell>
  )
  return `<!doctype html>${await page}`
}

const css = `
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; --grid: #e2e8f0; --panel: #f8fafc; }
  @media (prefers-color-scheme: dark) { :root { --grid: #1e293b; --panel: #0f172a; } }
  body { margin: 0 auto; max-width: 72rem; padding: 1rem; }
  header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
  h1 { margin: 0; font-size: 1.4rem; }
  .ranges > * { margin-right: 0.5rem; }
  .panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr)); gap: 1rem; }
  .panel { background: var(--panel); border-radius: 0.5rem; padding: 0.5rem 0.75rem; }
  .panel h2 { font-size: 0.95rem; margin: 0 0 0.25rem; }
  svg { display: block; width: 100%; height: auto; }
  .grid { stroke: var(--grid); }
  .axis { font-size: 10px; fill: currentColor; opacity: 0.7; }
  .series { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
  .threshold { stroke: #dc2626; stroke-dasharray: 4 3; }
  .threshold-label { font-size: 9px; fill: #dc2626; }
  .empty { font-size: 12px; fill: currentColor; opacity: 0.6; }
  .legend { list-style: none; margin: 0.25rem 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; font-size: 0.85rem; }
  .swatch { display: inline-block; width: 0.7rem; height: 0.7rem; border-radius: 0.2rem; margin-right: 0.3rem; }
  .muted { opacity: 0.7; }
  .error { color: #dc2626; font-weight: 600; }
`
