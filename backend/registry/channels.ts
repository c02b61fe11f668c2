/** Which version each channel serves, by Foundry's version ordering. */
import type { Channel } from '#shared/releases.ts'
import { newestVersion } from './foundry-version.ts'
import type { ModuleRecord, VersionEntry } from './records.ts'

/** The newest packaged (not deleted) version of a channel. */
export function latestOf(versions: readonly VersionEntry[], channel: Channel): string | null {
  return newestVersion(
    versions.filter((v) => v.status === 'packaged' && v.channel === channel).map((v) => v.version)
  )
}

export function recomputeLatest(versions: readonly VersionEntry[]): ModuleRecord['latest'] {
  return { stable: latestOf(versions, 'stable'), beta: latestOf(versions, 'beta') }
}

/**
 * The version a channel's manifest URL serves. The beta manifest serves the newest of the latest
 * beta and the latest stable, so beta testers are offered a stable release that overtakes their beta.
 */
export function servedVersion(record: ModuleRecord, channel: Channel): string | null {
  if (channel === 'stable') return record.latest.stable
  return newestVersion([record.latest.beta, record.latest.stable].filter((v): v is string => v !== null))
}
