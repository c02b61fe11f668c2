/**
 * NATS subject names, in one place for the edge and the backend.
 * Request/reply subjects are scoped by datacenter because the edge has already chosen one.
 */
export const subjects = {
  /** Request/reply liveness round trip, answered by the web service of `dc`. */
  ping: (dc: string) => `ping.${dc}`,
  /** Each service announces its state here every few seconds; the web service aggregates. */
  heartbeat: (dc: string, service: string) => `heartbeat.${dc}.${service}`,
  heartbeats: (dc: string) => `heartbeat.${dc}.*`,
  /** Image transforms for `dc` (image issue). */
  imageTransform: (dc: string) => `images.${dc}.transform`,
  /** Release events (stream RELEASES), published by the release service once per outcome. */
  releasePackaged: 'releases.packaged',
  releaseRejected: 'releases.rejected',
  /** Every release event: the RELEASES stream's subjects, and what the notifier's consumer takes. */
  releaseEvents: 'releases.>',
} as const

/** Queue groups: one per service, so each request is handled once per datacenter. */
export const queueGroups = {
  web: 'web',
  images: 'images',
} as const
