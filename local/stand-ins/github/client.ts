/**
 * Talking to a running stand-in and edge from another process (a test, `npm run release:demo`, a
 * benchmark): register a release with the GitHub stand-in, send a delivery to the edge.
 */
import type { Delivery } from './delivery.ts'
import type { ReleaseSpecInput } from './spec.ts'

/**
 * Sends a delivery to the edge's webhook endpoint as GitHub does. Content-Length is left to fetch,
 * which sets it from the body (and refuses one given by hand).
 */
export function postDelivery(
  edgeUrl: string,
  delivery: Pick<Delivery, 'headers' | 'body'>,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {}
): Promise<Response> {
  const headers = Object.fromEntries(
    Object.entries(delivery.headers).filter(([name]) => name.toLowerCase() !== 'content-length')
  )
  return fetch(`${edgeUrl}/webhooks/github`, {
    method: 'POST',
    headers: { ...headers, ...init.headers },
    body: delivery.body,
    signal: init.signal,
  })
}

/** Registers a release with a stand-in running in another process (`POST /_control/releases`). */
export async function registerRelease(gitHubUrl: string, spec: ReleaseSpecInput): Promise<void> {
  const res = await fetch(`${gitHubUrl.replace(/\/+$/, '')}/_control/releases`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  })
  if (!res.ok) throw new Error(`GitHub stand-in refused the release: HTTP ${res.status} ${await res.text()}`)
}
