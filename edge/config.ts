/**
 * The edge's configuration, from wrangler vars, validated with zod (the catalogue with the shared
 * schema). A Worker has no start-up hook, so it is validated on first use and memoised per
 * isolate; a bad value answers every request with a 500 that names the variable.
 */
import { errorMessage } from '#shared/error-message.ts'
import { z } from 'zod'
import {
  describeIssues,
  endpointsSchema,
  datacenterIdSchema,
  parseReachableCatalogue,
  type Endpoints,
  type ReachableDatacenter,
} from '#shared/catalogue.ts'
import { nkeySeedMessage, nkeySeedPattern } from '#shared/nats-permissions.ts'
import type { Bindings } from './env.ts'
import type { EdgeSite } from './placement/edge-location.ts'
import { steeringModes, type SteeringMode } from './latency/choose.ts'

const millis = (fallback: number, min = 1) =>
  z.coerce.number().int().min(min).max(3_600_000).default(fallback)

/**
 * A bearer credential: at least 32 random bytes, i.e. 43 base64url characters (`openssl rand
 * -base64 32` gives 44); printable ASCII only, as it travels in an Authorization header.
 */
const bearerToken = z
  .string()
  .min(43, 'must be at least 43 characters (32 random bytes, e.g. `openssl rand -base64 32`)')
  .max(512, 'must be at most 512 characters')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')

/**
 * DATACENTER_LEGS's bound, checked before it is parsed: a leg is some 70 characters, so this holds the
 * legs of about 30 datacenters (900 pairs); the world catalogue's 36 legs take 3 kB.
 */
const MAX_LEGS_CHARS = 64 * 1024

const varsSchema = z.object({
  ALLOW_GEO_OVERRIDE: z.enum(['true', 'false']).default('false'),
  /**
   * `measured`: steer each request to the datacenter measured fastest from its edge location
   * (latency/choose.ts); `distance`: by great-circle distance only, as before measurements.
   */
  STEERING_MODE: z.enum(steeringModes).default('measured'),
  /** Active health probe period (Durable Object alarm). */
  PROBE_INTERVAL_MS: millis(5_000, 100),
  PROBE_TIMEOUT_MS: millis(2_000, 50),
  /** Consecutive failures (probes or passive reports) that take a datacenter down. */
  DOWN_AFTER: z.coerce.number().int().min(1).max(100).default(2),
  /** Consecutive successful probes that bring it back. */
  UP_AFTER: z.coerce.number().int().min(1).max(100).default(3),
  /** How long an isolate trusts its copy of the health state before asking the Durable Object again. */
  HEALTH_MEMO_MS: millis(2_000, 100),
  /** How long one attempt at a datacenter may take before the request moves to the next one. */
  UPSTREAM_TIMEOUT_MS: millis(5_000, 50),
  /** How long one datacenter may take to answer an image transform before the next one is tried. */
  IMAGE_TIMEOUT_MS: millis(15_000, 100),
  /**
   * How many NatsBridge objects share one datacenter's traffic from one edge region
   * (nats/bridge-stub.ts): each is single-threaded, so this is how far that traffic can grow.
   */
  BRIDGE_SHARDS: z.coerce.number().int().min(1).max(64).default(1),
  /** When set, image URLs must be signed (`/img/s:<hmac>/...`). */
  IMAGE_SIGNING_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Secret of the GitHub webhook; without it POST /webhooks/github answers 503. */
  GITHUB_WEBHOOK_SECRET: z.string().min(1).optional(),
  /** The edge's NATS user (nkey seed): every datacenter's NATS refuses a connection without it. */
  NATS_EDGE_SEED: z
    .string({ error: "is required (the edge's NATS nkey seed, a wrangler secret)" })
    .regex(nkeySeedPattern, nkeySeedMessage),
  /** Bearer token of the operator API; without it the operator API answers 503. */
  ADMIN_TOKEN: bearerToken.optional(),
  /** Bearer token valid only for POST /admin/cache/purge (the release service holds it, not ADMIN_TOKEN). */
  PURGE_TOKEN: bearerToken.optional(),
  /**
   * The edge's proof to the datacenters' web endpoints: the Cloudflare Access service token
   * (CF-Access-Client-Id / CF-Access-Client-Secret), sent on every probe and proxied request.
   * Required: without it every datacenter would refuse the edge.
   */
  ORIGIN_CLIENT_ID: z
    .string()
    .min(1, 'must be set')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII'),
  ORIGIN_CLIENT_SECRET: bearerToken,
  /**
   * Local runs with the WAN on only (steering/legs.ts; production never sets it): JSON, for every
   * pair of DATACENTERS, the endpoints that reach the target from the client's home datacenter.
   */
  DATACENTER_LEGS: z
    .string()
    .max(MAX_LEGS_CHARS, `must be at most ${MAX_LEGS_CHARS} characters (the legs of some 30 datacenters)`)
    .optional(),
  /**
   * Local runs only (placement/edge-location.ts): JSON, places where clients enter the edge that have
   * no datacenter (Dubai, Johannesburg). With DATACENTER_LEGS, each needs a leg to every datacenter.
   */
  EDGE_LOCATIONS: z
    .string()
    .max(8 * 1024, 'must be at most 8192 characters')
    .optional(),
})

/** One of EDGE_LOCATIONS: an id that no datacenter has, a name and coordinates. */
const edgeLocationsSchema = z
  .array(
    z.strictObject({
      id: datacenterIdSchema,
      name: z.string().min(1).max(64),
      lat: z.number().min(-90).max(90),
      lon: z.number().min(-180).max(180),
    })
  )
  .max(64, 'at most 64 edge locations')

export interface EdgeConfig {
  datacenters: ReachableDatacenter[]
  byId: Map<string, ReachableDatacenter>
  /**
   * Where requests may enter the edge on a local run: the datacenters, then EDGE_LOCATIONS
   * (placement/edge-location.ts).
   */
  edgeSites: EdgeSite[]
  /** DATACENTER_LEGS: set only on a local run with the WAN on (steering/legs.ts). */
  legs: DatacenterLegs | undefined
  allowGeoOverride: boolean
  steeringMode: SteeringMode
  health: {
    probeIntervalMs: number
    probeTimeoutMs: number
    downAfter: number
    upAfter: number
    memoMs: number
  }
  upstreamTimeoutMs: number
  imageTimeoutMs: number
  /** BRIDGE_SHARDS: bridges per (datacenter, edge region). */
  bridgeShards: number
  imageSigningKey: string | undefined
  githubWebhookSecret: string | undefined
  adminToken: string | undefined
  natsEdgeSeed: string
  purgeToken: string | undefined
  /** Headers that prove to a datacenter's web service that a request comes from the edge. */
  originProof: Readonly<Record<'cf-access-client-id' | 'cf-access-client-secret', string>>
}

export class EdgeConfigError extends Error {
  override name = 'EdgeConfigError'
}

/** By edge location id, then target datacenter id: the endpoints of that leg (steering/legs.ts). */
export type DatacenterLegs = ReadonlyMap<string, ReadonlyMap<string, Endpoints>>

/** How many of a bad DATACENTER_LEGS's problems the error lists: it is answered to every client. */
const MAX_LEG_ISSUES = 5

/**
 * DATACENTER_LEGS as a complete table: every edge location (each datacenter, and each of
 * EDGE_LOCATIONS) has a leg to every datacenter, itself included, so a request never silently bypasses
 * the emulated WAN for want of one.
 */
function legsSchema(ids: readonly string[], homes: readonly string[]) {
  const known = new Set(ids)
  const knownHomes = new Set(homes)
  const unknown = (id: string) => `unknown datacenter "${id}" (not in DATACENTERS)`
  const unknownHome = (id: string) => `unknown edge location "${id}" (not in DATACENTERS or EDGE_LOCATIONS)`
  const missing =
    'missing: every datacenter and edge location needs a leg to each datacenter, itself included'
  return z.record(z.string(), z.record(z.string(), endpointsSchema)).superRefine((legs, ctx) => {
    for (const [home, row] of Object.entries(legs)) {
      if (!knownHomes.has(home)) ctx.addIssue({ code: 'custom', path: [home], message: unknownHome(home) })
      for (const target of Object.keys(row))
        if (!known.has(target))
          ctx.addIssue({ code: 'custom', path: [home, target], message: unknown(target) })
    }
    for (const home of homes) {
      const row = Object.hasOwn(legs, home) ? legs[home] : undefined
      if (!row) ctx.addIssue({ code: 'custom', path: [home], message: missing })
      else
        for (const target of ids)
          if (!Object.hasOwn(row, target))
            ctx.addIssue({ code: 'custom', path: [home, target], message: missing })
    }
  })
}

/** JSON.parse that refuses a `__proto__` key (zod would drop it without a word) as `name`'s error. */
function parseJsonVar(name: string, text: string): unknown {
  try {
    return JSON.parse(text, (key, value: unknown) => {
      if (key === '__proto__') throw new EdgeConfigError(`${name}: "__proto__" is not an id`)
      return value
    })
  } catch (error) {
    if (error instanceof EdgeConfigError) throw error
    // Valid JSON too deep for the reviver's recursion is a RangeError: say so, not "not JSON".
    if (!(error instanceof SyntaxError))
      throw new EdgeConfigError(`${name}: cannot be read (${String(error)})`)
    throw new EdgeConfigError(`${name}: not valid JSON`)
  }
}

function parseEdgeLocations(
  text: string | undefined,
  datacenters: readonly ReachableDatacenter[]
): EdgeSite[] {
  if (text === undefined) return []
  const parsed = z
    .object({ EDGE_LOCATIONS: edgeLocationsSchema })
    .safeParse({ EDGE_LOCATIONS: parseJsonVar('EDGE_LOCATIONS', text) })
  if (!parsed.success) throw new EdgeConfigError(describeIssues(parsed.error))
  const ids = new Set<string>(datacenters.map((dc) => dc.id))
  for (const site of parsed.data.EDGE_LOCATIONS) {
    if (ids.has(site.id))
      throw new EdgeConfigError(`EDGE_LOCATIONS: "${site.id}" is taken (a datacenter or another location)`)
    ids.add(site.id)
  }
  return parsed.data.EDGE_LOCATIONS
}

function parseLegs(
  text: string,
  datacenters: readonly ReachableDatacenter[],
  sites: readonly EdgeSite[]
): DatacenterLegs {
  const data = parseJsonVar('DATACENTER_LEGS', text)
  const parsed = z
    .object({
      DATACENTER_LEGS: legsSchema(
        datacenters.map((dc) => dc.id),
        sites.map((site) => site.id)
      ),
    })
    .safeParse({ DATACENTER_LEGS: data })
  if (!parsed.success) {
    const { issues } = parsed.error
    const more = issues.length > MAX_LEG_ISSUES ? `; and ${issues.length - MAX_LEG_ISSUES} more` : ''
    throw new EdgeConfigError(describeIssues(new z.ZodError(issues.slice(0, MAX_LEG_ISSUES))) + more)
  }
  return new Map(
    Object.entries(parsed.data.DATACENTER_LEGS).map(([home, row]) => [home, new Map(Object.entries(row))])
  )
}

/**
 * What the edge reads; every name must be a binding (wrangler.toml's, or a secret or a local-only var
 * in env.ts).
 */
type ConfigVars = Pick<Bindings, 'DATACENTERS' | keyof z.input<typeof varsSchema>>

/** The names of the variables and secrets the edge reads, DATACENTERS aside. */
export const configVarNames = varsSchema.keyof().options

/** By bindings object: the Worker's and each Durable Object's are different objects, each stable. */
const byEnv = new WeakMap<object, EdgeConfig>()
/** By value, for a bindings object not seen yet (tests pass new ones). */
let memo: { key: string; config: EdgeConfig } | undefined

export function edgeConfig(env: ConfigVars): EdgeConfig {
  const known = byEnv.get(env)
  if (known) return known
  const key = JSON.stringify([
    env.DATACENTERS,
    ...Object.keys(varsSchema.shape).map((k) => env[k as keyof ConfigVars]),
  ])
  if (memo?.key === key) {
    byEnv.set(env, memo.config)
    return memo.config
  }
  let data: unknown
  try {
    data = JSON.parse(env.DATACENTERS ?? '')
  } catch {
    throw new EdgeConfigError('DATACENTERS: not valid JSON')
  }
  let datacenters: ReachableDatacenter[]
  try {
    datacenters = parseReachableCatalogue(data, 'DATACENTERS')
  } catch (error) {
    throw new EdgeConfigError(errorMessage(error))
  }
  const vars = varsSchema.safeParse(env)
  if (!vars.success) throw new EdgeConfigError(describeIssues(vars.error))
  const v = vars.data
  // One credential for two roles would make the purge token an operator token.
  if (v.PURGE_TOKEN !== undefined && v.PURGE_TOKEN === v.ADMIN_TOKEN)
    throw new EdgeConfigError('PURGE_TOKEN: must differ from ADMIN_TOKEN')
  const edgeSites: EdgeSite[] = [...datacenters, ...parseEdgeLocations(v.EDGE_LOCATIONS, datacenters)]
  const legs =
    v.DATACENTER_LEGS === undefined ? undefined : parseLegs(v.DATACENTER_LEGS, datacenters, edgeSites)
  const config: EdgeConfig = {
    datacenters,
    byId: new Map(datacenters.map((dc) => [dc.id, dc])),
    edgeSites,
    legs,
    allowGeoOverride: v.ALLOW_GEO_OVERRIDE === 'true',
    steeringMode: v.STEERING_MODE,
    health: {
      probeIntervalMs: v.PROBE_INTERVAL_MS,
      probeTimeoutMs: v.PROBE_TIMEOUT_MS,
      downAfter: v.DOWN_AFTER,
      upAfter: v.UP_AFTER,
      memoMs: v.HEALTH_MEMO_MS,
    },
    upstreamTimeoutMs: v.UPSTREAM_TIMEOUT_MS,
    imageTimeoutMs: v.IMAGE_TIMEOUT_MS,
    bridgeShards: v.BRIDGE_SHARDS,
    imageSigningKey: v.IMAGE_SIGNING_KEY,
    githubWebhookSecret: v.GITHUB_WEBHOOK_SECRET,
    adminToken: v.ADMIN_TOKEN,
    natsEdgeSeed: v.NATS_EDGE_SEED,
    purgeToken: v.PURGE_TOKEN,
    originProof: {
      'cf-access-client-id': v.ORIGIN_CLIENT_ID,
      'cf-access-client-secret': v.ORIGIN_CLIENT_SECRET,
    },
  }
  memo = { key, config }
  byEnv.set(env, config)
  return config
}
