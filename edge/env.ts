/** The Worker's bindings (wrangler.toml) and the per-request variables the middleware sets. */
import type { NatsBridge } from './nats/bridge.ts'
import type { HealthRegistry } from './steering/health-registry.ts'
import type { EdgeConfig } from './config.ts'

export interface Bindings {
  /** The datacenter catalogue with endpoints, as JSON (see shared/catalogue.ts). */
  DATACENTERS: string
  /** "true" lets `x-client-geo: <lat>,<lon>` override request.cf (local runs and tests only). */
  ALLOW_GEO_OVERRIDE?: string
  PROBE_INTERVAL_MS?: string
  PROBE_TIMEOUT_MS?: string
  DOWN_AFTER?: string
  UP_AFTER?: string
  HEALTH_MEMO_MS?: string
  UPSTREAM_TIMEOUT_MS?: string
  IMAGE_TIMEOUT_MS?: string
  /** Secret: when set, image URLs must be signed. */
  IMAGE_SIGNING_KEY?: string
  /** Secret: GitHub webhook secret. */
  GITHUB_WEBHOOK_SECRET?: string
  /** Secret: the edge's NATS user nkey seed (shared/nats-permissions.ts). */
  NATS_EDGE_SEED?: string
  /** Secret: bearer token of the operator API. */
  ADMIN_TOKEN?: string
  /** Secret: bearer token for the cache purge only (the release service's). */
  PURGE_TOKEN?: string
  /** Secret: Cloudflare Access service token id, the edge's proof to the datacenters. */
  ORIGIN_CLIENT_ID?: string
  /** Secret: Cloudflare Access service token secret. */
  ORIGIN_CLIENT_SECRET?: string
  /** One NATS connection per datacenter, held by a Durable Object named by the datacenter id. */
  NATS_BRIDGE: DurableObjectNamespace<NatsBridge>
  /** The health truth: one Durable Object (named "global") that probes every datacenter. */
  HEALTH: DurableObjectNamespace<HealthRegistry>
  /** Image misses per client IP (wrangler.toml `[[ratelimits]]`); past it: 429 rate_limited. */
  IMAGE_RATE_LIMITER: RateLimit
}

export interface Variables {
  requestId: string
  config: EdgeConfig
}

export type AppEnv = { Bindings: Bindings; Variables: Variables }
