/** The small landing page a datacenter's web service serves at `/`. */
const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!
  )

export function landingPage(dc: { id: string; name: string }): string {
  const id = escapeHtml(dc.id)
  const name = escapeHtml(dc.name)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vtta.io</title>
<style>
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { max-width: 40rem; margin: 4rem auto; padding: 0 1rem; line-height: 1.5; }
  h1 { margin-bottom: 0.25rem; }
  .dc { display: inline-block; padding: 0.1rem 0.5rem; border-radius: 0.5rem; background: #2563eb22; }
  code { font-size: 0.95em; }
</style>
</head>
<body>
<h1>vtta.io</h1>
<p>Image proxy, module updates and release announcements for Foundry VTT players and module authors.</p>
<ul>
  <li>Images: <code>/img/&lt;options&gt;/&lt;source URL&gt;</code>, e.g. <code>/img/width=400,format=auto/https://www.dndbeyond.com/…</code></li>
  <li>Module manifests: <code>/modules/&lt;id&gt;/module.json</code></li>
  <li>Platform status: <a href="/status">/status</a></li>
</ul>
<p>Served from <span class="dc" data-datacenter="${id}">${name} (${id})</span>.</p>
</body>
</html>
`
}
