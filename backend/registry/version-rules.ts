/**
 * The registry's rules for adding a release's version to a module, as one pure decision so the
 * release service can check early (before downloading) and the commit re-checks atomically.
 */
import type { Channel, RejectionCode } from '#shared/releases.ts'
import { isNewerVersion } from './foundry-version.ts'
import type { ModuleRecord } from './records.ts'

export interface Candidate {
  moduleId: string
  repositoryId: number
  releaseId: number
  version: string
  channel: Channel
}

export type Decision =
  /** Not there yet: store it. */
  | { kind: 'new' }
  /** This very release is already stored in this channel (or stable, which beta never demotes). */
  | { kind: 'already' }
  /** This release is stored as beta and is now a full release. */
  | { kind: 'promote' }
  /** This release was deleted; a late event for it changes nothing. */
  | { kind: 'deleted' }
  | { kind: 'reject'; code: RejectionCode; reason: string }

export function decide(record: ModuleRecord | null, c: Candidate): Decision {
  if (record && record.repositoryId !== c.repositoryId)
    return {
      kind: 'reject',
      code: 'module_id_taken',
      reason: `module id "${c.moduleId}" belongs to another repository (${record.repository})`,
    }
  const existing = record?.versions.find((v) => v.version === c.version)
  if (existing) {
    if (existing.releaseId !== c.releaseId)
      return {
        kind: 'reject',
        code: 'version_exists',
        reason: `version ${c.version} of "${c.moduleId}" was already released (release ${existing.releaseId}${
          existing.status === 'deleted' ? ', since deleted' : ''
        }); released versions are immutable, publish a new version`,
      }
    if (existing.status === 'deleted') return { kind: 'deleted' }
    if (existing.channel === c.channel || existing.channel === 'stable') return { kind: 'already' }
  }
  const latest = record?.latest[c.channel] ?? null
  if (latest !== null && !isNewerVersion(c.version, latest))
    return {
      kind: 'reject',
      code: 'version_not_newer',
      reason: `version ${c.version} is not newer than ${latest}, the latest ${c.channel} version of "${c.moduleId}" (Foundry's version ordering)`,
    }
  return existing ? { kind: 'promote' } : { kind: 'new' }
}
