/** The Worker's bindings (wrangler.toml) and the per-request variables the middleware sets. */
import type { NatsBridge } from './nats/bridge.ts'
import type { EdgeConfig } from './config.ts'

export interface Bindings {
  /** The datacenter catalogue with endpoints, as JSON (see shared/catalogue.ts). */
  DATACENTERS: string
  /** "true" lets `x-client-geo: <lat>,<lon>` override request.cf (local runs and tests only). */
  ALLOW_GEO_OVERRIDE?: string
  /** One NATS connection per datacenter, held by a Durable Object named by the datacenter id. */
  NATS_BRIDGE: DurableObjectNamespace<NatsBridge>
}

export interface Variables {
  requestId: string
  config: EdgeConfig
}

export type AppEnv = { Bindings: Bindings; Variables: Variables }
