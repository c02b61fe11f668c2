/**
 * NATS subject names, in one place for the edge and the backend.
 * Request/reply subjects are scoped by datacenter because the edge has already chosen one.
 */

/**
 * A GitHub action as one subject token: lower-cased and reduced to [a-z_], at most 32 characters
 * (GitHub's actions are `published`, `released`, …; anything else becomes a harmless token, never a
 * wildcard or a dot).
 */
const actionToken = (action: string) =>
  action
    .toLowerCase()
    .replace(/[^a-z_]/g, '_')
    .slice(0, 32) || 'unknown'

export const subjects = {
  /** Request/reply liveness round trip, answered by the web service of `dc`. */
  ping: (dc: string) => `ping.${dc}`,
  /** Each service announces its state here every few seconds; the web service aggregates. */
  heartbeat: (dc: string, service: string) => `heartbeat.${dc}.${service}`,
  heartbeats: (dc: string) => `heartbeat.${dc}.*`,
  /** Image transforms for `dc` (image issue). */
  imageTransform: (dc: string) => `images.${dc}.transform`,
  /**
   * Image transforms for any datacenter of `region` (issue #15), what the edge asks when the catalogue
   * has several regions: the server the request enters prefers its own image services, then its
   * region's (routes), then the nearest region's (gateways), so a region without one still gets answers.
   */
  imageTransformInRegion: (region: string) => `images.region.${region}.transform`,
  /** Release events (stream RELEASES), published by the release service once per outcome. */
  releasePackaged: 'releases.packaged',
  releaseRejected: 'releases.rejected',
  /** Every release event: the RELEASES stream's subjects, and what the notifier's consumer takes. */
  releaseEvents: 'releases.>',
  /** A GitHub `release` delivery, stored by the edge in the GITHUB stream. */
  githubRelease: (action: string) => `github.release.${actionToken(action)}`,
} as const

/** Queue groups: one per service, so each request is handled once per datacenter. */
export const queueGroups = {
  web: 'web',
  images: 'images',
} as const
