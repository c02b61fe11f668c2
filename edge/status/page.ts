/**
 * `/status`: the operator's page. A world map with each datacenter as a marker coloured by state,
 * the viewer's location and the datacenter it is steered to, last probe time and latency, recent
 * state changes. Rendered complete on the server (works without JavaScript), then refreshed from
 * /status.json every few seconds by a small inline script.
 */
import type { StatusDocument } from './status-document.ts'
import { graticulePath, landPath } from './world-map.ts'

export const stateColours = {
  healthy: '#16a34a',
  degraded: '#d97706',
  down: '#dc2626',
  drained: '#6b7280',
} as const

export function statusPage(doc: StatusDocument, refreshMs: number): string {
  const initial = JSON.stringify(doc).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vtta.io status</title>
<style>
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; --land: #cbd5e1; --sea: #f8fafc; --grid: #e2e8f0; }
  @media (prefers-color-scheme: dark) { :root { --land: #334155; --sea: #0f172a; --grid: #1e293b; } }
  body { margin: 0 auto; max-width: 72rem; padding: 1rem; }
  header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
  h1 { margin: 0; font-size: 1.4rem; }
  #summary { font-weight: 600; }
  svg { width: 100%; height: auto; background: var(--sea); border-radius: 0.5rem; }
  .land { fill: var(--land); }
  .grid { stroke: var(--grid); vector-effect: non-scaling-stroke; fill: none; }
  .land { stroke: var(--sea); vector-effect: non-scaling-stroke; }
  .dc circle { stroke: #fff; }
  .dc text { paint-order: stroke; stroke: var(--sea); fill: currentColor; }
  .route { stroke: #2563eb; fill: none; }
  .viewer { fill: #2563eb; }
  table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
  th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--grid); }
  .badge { display: inline-block; min-width: 5.5rem; padding: 0.05rem 0.5rem; border-radius: 1rem; color: #fff; text-align: center; }
  .legend span { margin-right: 1rem; }
  .muted { opacity: 0.7; }
</style>
</head>
<body>
<header>
  <h1>vtta.io status</h1>
  <span id="summary"></span>
  <span class="legend muted">${Object.entries(stateColours)
    .map(([state, colour]) => `<span><span style="color:${colour}">&#9679;</span> ${state}</span>`)
    .join('')}</span>
</header>
<p id="viewer" class="muted"></p>
<svg id="map" viewBox="-180 -90 360 180" role="img" aria-label="World map of datacenters">
  <path class="grid" d="${graticulePath}"/>
  <path class="land" d="${landPath}"/>
  <g id="routes"></g>
  <g id="markers"></g>
</svg>
<table>
  <thead><tr><th>Datacenter</th><th>State</th><th>Since</th><th>Last probe</th><th>Latency</th><th>Note</th></tr></thead>
  <tbody id="datacenters"></tbody>
</table>
<h2>Recent changes</h2>
<table><tbody id="changes"></tbody></table>
<p class="muted">Updated <span id="updated"></span>; refreshes every ${Math.round(refreshMs / 1000)} s from <a href="/status.json">/status.json</a>.</p>
<script>
const colours = ${JSON.stringify(stateColours)};
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '-');
// Frame the map on the datacenters and the viewer (the whole world when they span it), 2:1.
function frame(doc) {
  const points = doc.datacenters.map((dc) => [dc.lon, dc.lat]);
  if (doc.viewer.lat !== undefined) points.push([doc.viewer.lon, doc.viewer.lat]);
  const lons = points.map((p) => p[0]), lats = points.map((p) => p[1]);
  let width = Math.max(60, Math.max(...lons) - Math.min(...lons) + 40);
  let height = Math.max(30, Math.max(...lats) - Math.min(...lats) + 24);
  if (width < height * 2) width = height * 2; else height = width / 2;
  width = Math.min(width, 360); height = Math.min(height, 180);
  const cx = Math.min(180 - width / 2, Math.max(-180 + width / 2, (Math.max(...lons) + Math.min(...lons)) / 2));
  const cy = Math.min(90 - height / 2, Math.max(-90 + height / 2, -(Math.max(...lats) + Math.min(...lats)) / 2));
  document.getElementById('map').setAttribute('viewBox', [cx - width / 2, cy - height / 2, width, height].join(' '));
  return width / 360;
}
function render(doc) {
  const ns = 'http://www.w3.org/2000/svg';
  const scale = frame(doc);
  const markers = document.getElementById('markers');
  markers.replaceChildren();
  for (const dc of doc.datacenters) {
    const g = document.createElementNS(ns, 'g');
    g.setAttribute('class', 'dc');
    g.setAttribute('data-dc', dc.id);
    g.setAttribute('data-state', dc.state);
    const circle = document.createElementNS(ns, 'circle');
    circle.setAttribute('cx', dc.lon);
    circle.setAttribute('cy', -dc.lat);
    circle.setAttribute('r', (dc.id === doc.viewer.steeredTo ? 2.6 : 2) * scale);
    circle.setAttribute('stroke-width', 0.6 * scale);
    circle.setAttribute('fill', colours[dc.state]);
    const title = document.createElementNS(ns, 'title');
    title.textContent = dc.name + ': ' + dc.state;
    circle.append(title);
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', dc.lon + 3 * scale);
    label.setAttribute('y', -dc.lat + 1 * scale);
    label.setAttribute('font-size', 3 * scale);
    label.setAttribute('stroke-width', 0.8 * scale);
    label.textContent = dc.id;
    g.append(circle, label);
    markers.append(g);
  }
  const routes = document.getElementById('routes');
  routes.replaceChildren();
  const target = doc.datacenters.find((dc) => dc.id === doc.viewer.steeredTo);
  if (doc.viewer.lat !== undefined && doc.viewer.lon !== undefined) {
    const you = document.createElementNS(ns, 'circle');
    you.setAttribute('class', 'viewer');
    you.setAttribute('id', 'you');
    you.setAttribute('cx', doc.viewer.lon);
    you.setAttribute('cy', -doc.viewer.lat);
    you.setAttribute('r', 1.4 * scale);
    routes.append(you);
    if (target) {
      const line = document.createElementNS(ns, 'path');
      line.setAttribute('class', 'route');
      line.setAttribute('d', 'M' + doc.viewer.lon + ' ' + -doc.viewer.lat + ' L' + target.lon + ' ' + -target.lat);
      line.setAttribute('stroke-width', 0.6 * scale);
      line.setAttribute('stroke-dasharray', 1.5 * scale + ' ' + scale);
      routes.append(line);
    }
  }
  const where = doc.viewer.lat !== undefined ? doc.viewer.lat.toFixed(2) + ', ' + doc.viewer.lon.toFixed(2) : 'unknown location';
  document.getElementById('viewer').textContent =
    'You (' + where + (doc.viewer.country ? ', ' + doc.viewer.country : '') + ') are served by ' +
    (target ? target.name + ' (' + target.id + ')' : 'no datacenter') + (doc.viewer.fallback ? ': no datacenter is healthy, using the nearest anyway' : '.');
  const counts = {};
  for (const dc of doc.datacenters) counts[dc.state] = (counts[dc.state] || 0) + 1;
  document.getElementById('summary').textContent = Object.entries(counts).map(([s, n]) => n + ' ' + s).join(', ');
  document.getElementById('datacenters').innerHTML = doc.datacenters.map((dc) =>
    '<tr data-dc="' + esc(dc.id) + '"><td>' + esc(dc.name) + ' <span class="muted">' + esc(dc.id) + '</span></td>' +
    '<td><span class="badge" style="background:' + colours[dc.state] + '">' + esc(dc.state) + '</span></td>' +
    '<td>' + time(dc.since) + '</td>' +
    '<td>' + (dc.lastProbe ? time(dc.lastProbe.at) + (dc.lastProbe.ok ? '' : ' (failed)') : '-') + '</td>' +
    '<td>' + (dc.lastProbe && dc.lastProbe.latencyMs !== undefined ? dc.lastProbe.latencyMs + ' ms' : '-') + '</td>' +
    '<td class="muted">' + esc(dc.lastProbe && dc.lastProbe.error ? dc.lastProbe.error : '') + '</td></tr>').join('');
  document.getElementById('changes').innerHTML = doc.changes.length === 0 ? '<tr><td class="muted">none yet</td></tr>' :
    doc.changes.slice(0, 15).map((ch) => '<tr><td>' + time(ch.at) + '</td><td>' + esc(ch.dc) + '</td><td>' + esc(ch.from) +
      ' &rarr; <b style="color:' + colours[ch.to] + '">' + esc(ch.to) + '</b></td><td class="muted">' + esc(ch.reason) + '</td></tr>').join('');
  document.getElementById('updated').textContent = time(doc.generatedAt);
}
render(${initial});
setInterval(async () => {
  try {
    const res = await fetch('/status.json', { cache: 'no-store', headers: { accept: 'application/json' } });
    if (res.ok) render(await res.json());
  } catch {}
}, ${refreshMs});
</script>
</body>
</html>
`
}
