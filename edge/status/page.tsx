/**
 * `/status`: the operator's page, rendered complete on the server with hono/jsx from the status
 * document that `/status.json` serves, so it works without JavaScript: a map of the datacenters
 * coloured by state with the viewer and the datacenter it is steered to; where the viewer enters the
 * edge, where it is served and why (measured latency or distance); a table of every datacenter grouped
 * by region (state, each vantage's view of it, the votes, the latency measured from the viewer's edge
 * location, since when, the last probe and its error, requests this edge sent it), the recent state
 * changes, and this edge's counters.
 *
 * The parts that change are marked `data-live` and have an id. `/status/live` renders the same parts
 * alone, and the page's one script (browser/refresh.ts) fetches it every few seconds and swaps each
 * part in by id: the server is the only renderer, so the page and its refresh cannot disagree, and
 * escaping happens in one place (JSX escapes every text and attribute).
 */
import type { FC } from 'hono/jsx'
import type { StatusDocument } from './document.ts'
import { LABEL_SIZE, MARKER_RADIUS, VANTAGE_LABEL_SIZE, VANTAGE_SIZE, type WorldMap } from './world-map.ts'
import { refreshScript } from './browser/refresh.generated.ts'
import { WARM_SAMPLES } from '../latency/estimates.ts'

export const stateColours = {
  healthy: '#16a34a',
  degraded: '#d97706',
  down: '#dc2626',
  drained: '#6b7280',
} as const

/** A vantage that has not heard of a datacenter yet (or was never heard from) has no state to show. */
const unheardColour = '#9ca3af'

type Datacenter = StatusDocument['datacenters'][number]
type Vantage = StatusDocument['vantages'][number]

/** The whole page, with its doctype. */
export async function statusPage(doc: StatusDocument, map: WorldMap, refreshMs: number): Promise<string> {
  return `<!doctype html>${await (<Page doc={doc} map={map} refreshMs={refreshMs} />)}`
}

/** The live parts alone (`/status/live`), each wrapped so that an HTML parser keeps it as it is. */
export async function liveParts(doc: StatusDocument, map: WorldMap): Promise<string> {
  const parts = (
    <>
      <Summary doc={doc} />
      <Viewer doc={doc} />
      <svg>
        <MapLayers doc={doc} map={map} />
      </svg>
      <table>
        <DatacenterRows doc={doc} />
      </table>
      <table>
        <ChangeRows doc={doc} />
      </table>
      <table>
        <EdgeCounterRow doc={doc} />
      </table>
      <Updated doc={doc} />
    </>
  )
  return String(await parts)
}

const Page: FC<{ doc: StatusDocument; map: WorldMap; refreshMs: number }> = ({ doc, map, refreshMs }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>vtta.io status</title>
      <style dangerouslySetInnerHTML={{ __html: css }} />
    </head>
    <body data-refresh-ms={String(refreshMs)}>
      <header>
        <h1>vtta.io status</h1>
        <Summary doc={doc} />
        <span class="legend muted">
          {Object.entries(stateColours).map(([state, colour]) => (
            <span>
              <span style={{ color: colour }}>&#9679;</span> {state}
            </span>
          ))}
          <span>
            <span style={{ color: 'var(--dissent)' }}>&#9711;</span> vantages disagree
          </span>
          <span>&#9670; vantage</span>
          <span>
            <span style={{ color: '#2563eb', fontWeight: 700 }}>- - -</span> your route
          </span>
        </span>
      </header>
      <Viewer doc={doc} />
      <svg
        id="map"
        viewBox={`0 0 ${map.width} ${map.height}`}
        role="img"
        aria-label="Map of the datacenters and their states, the vantages, and your route"
      >
        <path class="sea" d={map.sphere} />
        <path class="grid" d={map.graticule} />
        <path class="land" d={map.land} />
        <MapLayers doc={doc} map={map} />
      </svg>
      {/* Eight columns: on a narrow screen the table scrolls, not the page (by keyboard too). */}
      <div class="scroll" role="region" aria-label="Datacenters" tabindex={0}>
        <table class="datacenters">
          <thead>
            <tr>
              <th>Datacenter</th>
              <th title="The majority verdict of the vantages">State</th>
              <th title="How each region's vantage sees it">Vantages</th>
              <th title="How the fresh vantages voted">Votes</th>
              <th title="Request latency this edge isolate measured from your edge location">
                From your edge location
              </th>
              <th>Since</th>
              <th title="Your vantage's last probe, and its error">Last probe</th>
              <th title="Requests this edge isolate sent there">Served here</th>
            </tr>
          </thead>
          <DatacenterRows doc={doc} />
        </table>
      </div>
      <h2>Recent changes</h2>
      <table>
        <ChangeRows doc={doc} />
      </table>
      <h2>This edge</h2>
      <p class="muted">
        Counters of the edge isolate that answered this page; each isolate counts its own requests.
      </p>
      <table>
        <thead>
          <tr>
            <th>Requests</th>
            <th title="Answered from the edge cache">Cache hits</th>
            <th title="Answered by another datacenter after the first choice failed">Failovers</th>
            <th title="Steered while no datacenter was healthy">Fallbacks</th>
            <th title="No datacenter could answer">Failures</th>
            <th>Counting since</th>
          </tr>
        </thead>
        <EdgeCounterRow doc={doc} />
      </table>
      <p class="muted">
        Updated <Updated doc={doc} />; refreshes every {Math.round(refreshMs / 1000)} s with JavaScript
        (reload the page without it). Data: <a href="/status.json">/status.json</a>. Charts from Prometheus:{' '}
        <a href="/status/dashboard">the dashboard</a>.
      </p>
      <script dangerouslySetInnerHTML={{ __html: refreshScript }} />
    </body>
  </html>
)

const Summary: FC<{ doc: StatusDocument }> = ({ doc }) => {
  const counts = new Map<string, number>()
  for (const dc of doc.datacenters) counts.set(dc.state, (counts.get(dc.state) ?? 0) + 1)
  return (
    <span id="summary" data-live>
      {[...counts].map(([state, n]) => `${n} ${state}`).join(', ')}
    </span>
  )
}

const steeredTo = (doc: StatusDocument) => doc.datacenters.find((dc) => dc.id === doc.viewer.steeredTo)

const placeOf = (dc: { name: string; id: string }) => `${dc.name} (${dc.id})`

const Viewer: FC<{ doc: StatusDocument }> = ({ doc }) => {
  const { lat, lon, country, edgeLocation } = doc.viewer
  const where =
    lat !== undefined && lon !== undefined ? `${lat.toFixed(2)}, ${lon.toFixed(2)}` : 'unknown location'
  const entry = edgeLocation.name
    ? placeOf({ name: edgeLocation.name, id: edgeLocation.id })
    : edgeLocation.id
  const target = steeredTo(doc)
  return (
    <p id="viewer" data-live>
      You ({where}
      {country ? `, ${country}` : ''}) enter the edge at {entry} and are served by{' '}
      {target ? <b>{placeOf(target)}</b> : 'no datacenter'}
      {target ? `: ${whyServed(doc, target)}.` : '.'}
    </p>
  )
}

const milliseconds = (ms: number) => `${Math.round(ms)} ms`
const kilometres = (km: number) => `${km.toLocaleString('en-GB')} km`

/** Why the viewer is served by `target`, in words: what the choice compared, or why it compared nothing. */
function whyServed(doc: StatusDocument, target: Datacenter): string {
  const { reason, compared, mode, country } = doc.viewer
  if (reason === 'fallback') return 'no datacenter is healthy, using the nearest anyway'
  if (reason === 'pinned') return `pinned to your country${country ? ` (${country})` : ''}`
  const byId = new Map(doc.datacenters.map((dc) => [dc.id, dc]))
  const runnerUp = compared[1] === undefined ? undefined : byId.get(compared[1])
  if (reason === 'measured' && target.latency) {
    const next = runnerUp?.latency ? ` (${runnerUp.name} ${milliseconds(runnerUp.latency.ms)})` : ''
    return `measured ${milliseconds(target.latency.ms)}${next}`
  }
  if (target.km === null) return 'first in the catalogue (your location is unknown)'
  const nearest = `nearest by distance, ${kilometres(target.km)}`
  if (mode === 'distance') return `${nearest} (steering by distance: measurements are not used)`
  if (compared.length === 0) return `${nearest} (no measurements yet)`
  if (compared.length === 1) return `${nearest} (no other datacenter is near enough to compare)`
  const warm = compared.filter((id) => byId.get(id)?.latency?.warm).length
  return `${nearest} (not enough measurements yet: ${warm} of ${compared.length} nearby datacenters)`
}

/**
 * The viewer, the route to its datacenter (with the latency measured on it, when there is one), a
 * marker per datacenter, ringed when the vantages disagree about it, and a mark per vantage.
 */
const MapLayers: FC<{ doc: StatusDocument; map: WorldMap }> = ({ doc, map }) => {
  const { lat, lon } = doc.viewer
  const target = steeredTo(doc)
  const viewer = lat !== undefined && lon !== undefined ? ([lon, lat] as [number, number]) : undefined
  const you = viewer && map.place(...viewer)
  const to = target && ([target.lon, target.lat] as [number, number])
  const route = viewer && to ? map.route(viewer, to) : ''
  const measured = target?.latency && target.latency.samples > 0 ? target.latency : undefined
  const middle = measured && viewer && to ? map.midpoint(viewer, to) : undefined
  const byId = new Map(doc.datacenters.map((dc) => [dc.id, dc]))
  const vantages = new Map(doc.vantages.map((v) => [v.id, v]))
  return (
    <>
      <g id="routes" data-live>
        {route && <path class="route" d={route} />}
        {measured && middle && (
          <text class="route-label" x={middle.x} y={middle.y - 6} text-anchor="middle" font-size={LABEL_SIZE}>
            {milliseconds(measured.ms)}
          </text>
        )}
        {you && <circle id="you" class="viewer" cx={you.x} cy={you.y} r={MARKER_RADIUS * 0.6} />}
      </g>
      <g id="markers" data-live>
        {map.markers.map((marker) => {
          const dc = byId.get(marker.id)
          return dc && <Marker doc={doc} dc={dc} marker={marker} steered={dc.id === target?.id} />
        })}
      </g>
      <g id="vantages" data-live>
        {map.vantages.map((mark) => {
          const vantage = vantages.get(mark.id)
          const site = byId.get(mark.site)
          return vantage && <VantageMark vantage={vantage} mark={mark} site={site?.name ?? mark.site} />
        })}
      </g>
    </>
  )
}

/** The vantages whose fresh view of `dc` is up where the verdict is down, or down where it is up. */
function dissenters(doc: StatusDocument, dc: Datacenter): string[] {
  // The votes count only views that are fresh and have observed the datacenter.
  if (!dc.votes || dc.votes.up === 0 || dc.votes.down === 0 || dc.state === 'drained') return []
  const down = dc.state === 'down'
  return doc.vantages.flatMap((vantage) => {
    const view = dc.views[vantage.id]
    return vantage.fresh && view && view.state !== 'drained' && (view.state === 'down') !== down
      ? [`${vantage.id} sees it ${view.state}`]
      : []
  })
}

const Marker: FC<{
  doc: StatusDocument
  dc: Datacenter
  marker: WorldMap['markers'][number]
  steered: boolean
}> = ({ doc, dc, marker, steered }) => {
  const r = steered ? MARKER_RADIUS * 1.3 : MARKER_RADIUS
  const dissent = dissenters(doc, dc)
  const title = `${dc.name}: ${dc.state}${dissent.length ? ` (${dissent.join(', ')})` : ''}`
  return (
    <g class="dc" data-dc={dc.id} data-state={dc.state} {...(dissent.length ? { 'data-dissent': '' } : {})}>
      {dissent.length > 0 && <circle class="dissent" cx={marker.x} cy={marker.y} r={r + 3.5} />}
      <circle class="state" cx={marker.x} cy={marker.y} r={r} fill={stateColours[dc.state]}>
        <title>{title}</title>
      </circle>
      <text x={marker.label.x} y={marker.label.y} text-anchor={marker.label.anchor} font-size={LABEL_SIZE}>
        {dc.id}
      </text>
    </g>
  )
}

/** A vantage: a small diamond by its site, with its region; faint while its view is stale. */
const VantageMark: FC<{ vantage: Vantage; mark: WorldMap['vantages'][number]; site: string }> = ({
  vantage,
  mark,
  site,
}) => {
  const s = VANTAGE_SIZE
  return (
    <g class={vantage.fresh ? 'vantage' : 'vantage faint'} data-vantage={vantage.id}>
      <path
        d={`M${mark.x} ${mark.y - s}L${mark.x + s} ${mark.y}L${mark.x} ${mark.y + s}L${mark.x - s} ${mark.y}Z`}
      >
        <title>{`${vantage.id} vantage: probes from ${site}${vantage.fresh ? '' : ' (stale)'}`}</title>
      </path>
      <text x={mark.label.x} y={mark.label.y} text-anchor={mark.label.anchor} font-size={VANTAGE_LABEL_SIZE}>
        {vantage.id}
      </text>
    </g>
  )
}

/** Per region, a header row (its vantage and how fresh its view is), then its datacenters. */
const DatacenterRows: FC<{ doc: StatusDocument }> = ({ doc }) => {
  const byId = new Map(doc.datacenters.map((dc) => [dc.id, dc]))
  const vantages = new Map(doc.vantages.map((v) => [v.id, v]))
  return (
    <tbody id="datacenters" data-live>
      {doc.regions.map((region) => {
        const vantage = vantages.get(region.id)
        const site = vantage && byId.get(vantage.site)
        return (
          <>
            <tr class="region" data-region={region.id}>
              <th colspan={8} scope="rowgroup">
                {region.id}{' '}
                <span class="muted">
                  {site ? `· vantage at ${site.name}, ` : ''}
                  {vantage?.at ? (
                    <>
                      heard <Clock at={vantage.at} now={doc.generatedAt} />
                      {vantage.fresh ? '' : ' (stale: abstains)'}
                    </>
                  ) : (
                    'not heard yet'
                  )}
                </span>
              </th>
            </tr>
            {region.datacenters.map((id) => {
              const dc = byId.get(id)
              return dc && <DatacenterRow doc={doc} dc={dc} />
            })}
          </>
        )
      })}
    </tbody>
  )
}

const DatacenterRow: FC<{ doc: StatusDocument; dc: Datacenter }> = ({ doc, dc }) => {
  const probe = dc.lastProbe
  return (
    <tr data-dc={dc.id} data-state={dc.state}>
      <td>
        {dc.name} <span class="muted">{dc.id}</span>
      </td>
      <td>
        <span class="badge" style={{ background: stateColours[dc.state] }}>
          {dc.state}
        </span>
      </td>
      <td class="views">
        {doc.vantages.map((vantage) => (
          <ViewDot vantage={vantage} view={dc.views[vantage.id] ?? null} />
        ))}
      </td>
      <td class="votes">
        {dc.votes
          ? `${dc.votes.up} up · ${dc.votes.down} down${dc.votes.abstain ? ` · ${dc.votes.abstain} abstain` : ''}`
          : '-'}
      </td>
      <td class="latency">
        <LatencyCell dc={dc} />
      </td>
      <td>
        <Clock at={dc.since} now={doc.generatedAt} />
      </td>
      <td class="probe">
        {probe ? (
          <>
            <span class="nowrap">
              <Clock at={probe.at} now={doc.generatedAt} />
              {probe.ok ? '' : ' (failed)'}
              {probe.latencyMs !== undefined ? `, ${probe.latencyMs} ms` : ''}
            </span>
            {probe.error && <div class="muted">{probe.error}</div>}
          </>
        ) : (
          '-'
        )}
      </td>
      <td>{doc.edge.servedBy[dc.id] ?? 0}</td>
    </tr>
  )
}

/** One vantage's view of a datacenter: a dot in its state's colour, named for screen readers. */
const ViewDot: FC<{ vantage: Vantage; view: Datacenter['views'][string] }> = ({ vantage, view }) => {
  const label = view
    ? `${vantage.id}: ${view.state}${vantage.fresh ? '' : ' (stale)'}`
    : `${vantage.id}: not heard yet`
  return (
    <span class="view" data-vantage={vantage.id} data-state={view?.state ?? 'unknown'}>
      <span
        class={view && vantage.fresh ? 'dot' : 'dot faint'}
        role="img"
        aria-label={label}
        title={label}
        style={{ background: view ? stateColours[view.state] : unheardColour }}
      />
      {vantage.id}
    </span>
  )
}

/** The estimate from the viewer's edge location, its samples; or why there is none. */
const LatencyCell: FC<{ dc: Datacenter }> = ({ dc }) => {
  const { latency, km } = dc
  if (!latency)
    return <span class="muted">{km === null ? 'not measured' : `distance, ${kilometres(km)}`}</span>
  if (latency.samples === 0) return <span class="muted">no sample yet</span>
  const samples = `${latency.samples} sample${latency.samples === 1 ? '' : 's'}`
  const trust = latency.warm ? '' : latency.samples >= WARM_SAMPLES ? ', stale' : ', warming up'
  return (
    <>
      {milliseconds(latency.ms)} <span class="muted">{`· ${samples}${trust}`}</span>
    </>
  )
}

/** The 15 most recent changes, newest first (the registry keeps them in that order). */
const ChangeRows: FC<{ doc: StatusDocument }> = ({ doc }) => (
  <tbody id="changes" data-live>
    {doc.changes.length === 0 ? (
      <tr>
        <td class="muted">none yet</td>
      </tr>
    ) : (
      doc.changes.slice(0, 15).map((change) => (
        <tr>
          <td>
            <Clock at={change.at} now={doc.generatedAt} />
          </td>
          <td>{change.dc}</td>
          <td>
            {change.from} &rarr; <b style={{ color: stateColours[change.to] }}>{change.to}</b>
          </td>
          <td class="muted">{change.reason}</td>
        </tr>
      ))
    )}
  </tbody>
)

const EdgeCounterRow: FC<{ doc: StatusDocument }> = ({ doc }) => (
  <tbody id="edge" data-live>
    <tr>
      <td>{doc.edge.requests}</td>
      <td>{doc.edge.cacheHits}</td>
      <td>{doc.edge.failovers}</td>
      <td>{doc.edge.fallbacks}</td>
      <td>{doc.edge.failures}</td>
      {/* 0 when the counters were made at start-up, where workerd's clock reads 0 (the epoch). */}
      <td>
        <Clock at={doc.edge.since} now={doc.generatedAt} />
      </td>
    </tr>
  </tbody>
)

const Updated: FC<{ doc: StatusDocument }> = ({ doc }) => (
  <span id="updated" data-live>
    <Clock at={doc.generatedAt} now={doc.generatedAt} />
  </span>
)

/**
 * A time in UTC (the server does not know the reader's zone, and operators compare UTC logs): the
 * time of day, with the date when it is not today's.
 */
const Clock: FC<{ at: number; now: number }> = ({ at, now }) => {
  const iso = new Date(at).toISOString()
  const sameDay = iso.slice(0, 10) === new Date(now).toISOString().slice(0, 10)
  return <time datetime={iso}>{`${sameDay ? '' : `${iso.slice(0, 10)} `}${iso.slice(11, 19)} UTC`}</time>
}

const css = `
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; --land: #cbd5e1; --sea: #f8fafc; --space: #e2e8f0; --grid: #e2e8f0; --dissent: #7c3aed; }
  @media (prefers-color-scheme: dark) { :root { --land: #334155; --sea: #0f172a; --space: #020617; --grid: #1e293b; --dissent: #c4b5fd; } }
  body { margin: 0 auto; max-width: 72rem; padding: 1rem; }
  header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
  h1 { margin: 0; font-size: 1.4rem; }
  h2 { font-size: 1.1rem; margin: 1.5rem 0 0.25rem; }
  #summary { font-weight: 600; }
  svg { display: block; width: 100%; height: auto; background: var(--space); border-radius: 0.5rem; }
  .sea { fill: var(--sea); }
  .grid { stroke: var(--grid); fill: none; }
  .land { fill: var(--land); stroke: var(--sea); stroke-width: 0.5; }
  .dc circle { stroke: #fff; stroke-width: 2; }
  .dc text { paint-order: stroke; stroke: var(--sea); stroke-width: 4; fill: currentColor; font-weight: 600; }
  .route { stroke: #2563eb; stroke-width: 2; stroke-dasharray: 6 4; fill: none; }
  .route-label { paint-order: stroke; stroke: var(--sea); stroke-width: 4; fill: #2563eb; font-weight: 600; }
  .dc circle.dissent { fill: none; stroke: var(--dissent); stroke-width: 3; }
  .vantage path { fill: currentColor; stroke: var(--sea); stroke-width: 1; }
  .vantage text { paint-order: stroke; stroke: var(--sea); stroke-width: 3; fill: currentColor; font-style: italic; }
  .vantage.faint { opacity: 0.45; }
  .viewer { fill: #2563eb; stroke: #fff; stroke-width: 1.5; }
  table { border-collapse: collapse; width: 100%; margin-top: 0.5rem; }
  th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--grid); }
  .badge { display: inline-block; min-width: 5.5rem; padding: 0.05rem 0.5rem; border-radius: 1rem; color: #fff; text-align: center; }
  .legend > span { display: inline-block; margin-right: 1rem; white-space: nowrap; }
  .scroll { overflow-x: auto; }
  tr.region th { padding-top: 0.8rem; font-size: 0.95rem; border-bottom: 2px solid var(--grid); }
  .view { margin-right: 0.5rem; font-size: 0.8rem; white-space: nowrap; }
  .dot { display: inline-block; width: 0.7rem; height: 0.7rem; border-radius: 50%; margin-right: 0.15rem; vertical-align: -0.05rem; }
  .dot.faint { opacity: 0.4; }
  table.datacenters td:not(.probe), .nowrap { white-space: nowrap; }
  .muted { opacity: 0.7; }
  body[data-stale] #updated::after { content: " (the last refresh failed)"; color: #dc2626; }
`
