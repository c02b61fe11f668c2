/**
 * What a delivery names, confirmed with GitHub before anything happens: the repository is enrolled
 * (the operator's consent, registry `enrolled.<id>`), the delivery's installation covers it, and
 * GitHub serves that release in that repository. The result carries GitHub's own answer (name, tag,
 * notes, flags, assets); nothing of the payload but the three ids survives this step.
 *
 * A delivery that cannot be confirmed is refused with a stable code from
 * `unconfirmedRejectionCodes`: logged and counted, never announced.
 */
import type { Logger } from '../runtime/logger.ts'
import type { RegistryWriter } from '../registry/writer.ts'
import { Rejection } from './errors.ts'
import type { GitHubApp, GitHubRelease, GitHubRepository } from './github-api.ts'
import type { ReleasePayload } from './github-payload.ts'
import type { ReleaseMetrics } from './metrics.ts'

export interface Confirmed {
  installationId: number
  repository: GitHubRepository
  /** null: GitHub answers 404 for this release id in this repository (deleted, or never there). */
  release: GitHubRelease | null
}

export interface ConfirmDeps {
  registry: RegistryWriter
  github: GitHubApp
}

export async function confirmWithGitHub(deps: ConfirmDeps, payload: ReleasePayload): Promise<Confirmed> {
  const repositoryId = payload.repository.id
  const installationId = payload.installation?.id
  if (!installationId)
    throw new Rejection('installation_missing', 'the delivery names no GitHub App installation')
  // The three reads are independent: ask them at once (one round trip instead of three on the
  // release path), then judge in order, so the first failing check is the one reported.
  const [enrolled, repository, release] = await Promise.allSettled([
    deps.registry.enrollment(repositoryId),
    deps.github.repository(installationId, repositoryId),
    deps.github.release(installationId, repositoryId, payload.release.id),
  ])
  if (!settled(enrolled))
    throw new Rejection('repository_not_enrolled', `repository ${repositoryId} is not enrolled`)
  const covered = settled(repository)
  if (!covered)
    throw new Rejection(
      'repository_not_found',
      `installation ${installationId} does not cover repository ${repositoryId}`
    )
  return { installationId, repository: covered, release: settled(release) }
}

/** The value of a settled read, or its error thrown (a transient failure retries the delivery). */
function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'rejected') throw result.reason
  return result.value
}

/** Logs and counts a refusal of an unconfirmed delivery (no event: nobody to tell). */
export function logUnconfirmed(
  deps: { log: Logger; metrics: ReleaseMetrics },
  payload: ReleasePayload,
  delivery: string | null,
  rejection: Rejection
): void {
  deps.metrics.rejections.inc({ code: rejection.code })
  deps.log.warn(
    {
      code: rejection.code,
      reason: rejection.message,
      delivery,
      repositoryId: payload.repository.id,
      release: payload.release.id,
      installation: payload.installation?.id ?? null,
      // What the payload claims, for the operator: never used for anything else.
      claimedRepository: payload.repository.full_name,
    },
    'delivery refused: not confirmed by GitHub'
  )
}
