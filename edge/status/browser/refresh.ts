/**
 * The status page's live refresh, the page's only script (bundled by build.ts into
 * refresh.generated.ts, which the page inlines). The page is complete without it; with it, every
 * `data-refresh-ms` of <body> it fetches `/status/live` (the page's live parts, rendered by the server
 * from a fresh status document) and puts each part marked `data-live` in place of the element with
 * the same id. It renders nothing itself, so it cannot disagree with the server or forget to escape.
 *
 * A failed refresh keeps what is shown and marks the page stale (`data-stale` on <body>, which the
 * page's CSS turns into a note beside the time of the last update) until a refresh succeeds.
 */

const interval = Number(document.body.dataset.refreshMs)

async function refresh(): Promise<void> {
  try {
    const res = await fetch('/status/live', { cache: 'no-store', headers: { accept: 'text/html' } })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    const fresh = new DOMParser().parseFromString(await res.text(), 'text/html')
    for (const part of fresh.querySelectorAll('[data-live][id]'))
      document.getElementById(part.id)?.replaceWith(part)
    delete document.body.dataset.stale
  } catch {
    document.body.dataset.stale = ''
  }
}

/** One refresh at a time, the next `interval` after the last one ended; none while the tab is hidden. */
async function loop(): Promise<void> {
  if (!document.hidden) await refresh()
  setTimeout(() => void loop(), interval)
}

if (Number.isFinite(interval) && interval > 0) setTimeout(() => void loop(), interval)
