/**
 * Asks the edge to drop its cached copies of what a release changed (POST /admin/cache/purge).
 * Best effort: the latest manifests are cached 60 s at most anyway, so a failure is logged and
 * counted, never fatal. It bears PURGE_TOKEN, which the edge accepts for the purge and nothing
 * else: the release service holds no operator credential.
 */
import { errorMessage } from '#shared/error-message.ts'
import type { Logger } from '../runtime/logger.ts'

export interface PurgeTarget {
  publicBaseUrl: string
  purgeToken: string
  timeoutMs: number
}

/** The paths that change when a module's releases change, with the pages of the versions touched. */
export function modulePurgePaths(moduleId: string, versions: string[] = []): string[] {
  return [
    `/modules/${moduleId}/module.json`,
    `/modules/${moduleId}/beta/module.json`,
    '/api/modules',
    `/api/modules/${moduleId}`,
    ...versions.map((v) => `/api/modules/${moduleId}/releases/${encodeURIComponent(v)}`),
  ]
}

export async function purgeEdgeCache(
  target: PurgeTarget,
  paths: string[],
  log: Logger
): Promise<'purged' | 'skipped' | 'failed'> {
  if (!target.purgeToken) return 'skipped'
  const url = `${target.publicBaseUrl.replace(/\/+$/, '')}/admin/cache/purge`
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.purgeToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ paths }),
      signal: AbortSignal.timeout(target.timeoutMs),
    })
    await res.body?.cancel()
    if (res.ok) return 'purged'
    log.warn({ url, status: res.status, paths }, 'edge cache purge refused')
  } catch (err) {
    log.warn({ url, err: errorMessage(err), paths }, 'edge cache purge failed')
  }
  return 'failed'
}
