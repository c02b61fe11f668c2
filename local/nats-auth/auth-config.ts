/**
 * The authentication part of a datacenter's nats-server configuration (`auth.conf`, included by
 * nats.conf): the application account with its JetStream limits and one nkey user per component with
 * the permissions of shared/nats-permissions.ts for that datacenter, the system account (the operator's
 * `system` user and the job users of natsSystemPermissions, such as the nats-exporter), and the
 * credentials of the cluster routes and of the gateways between regions. The same renderer makes the
 * local platform's file and the production Docker secret (`npm run nats-auth`), so both enforce one model.
 *
 * Route and gateway credentials live here rather than in nats.conf because their URLs carry the password
 * (nats-server 2.9 does not send the cluster's `authorization` on routes it solicits; the NATS docs put the
 * gateway's credentials in its URLs too): nats.conf says `routes: $ROUTES`, `gateways: $GATEWAYS` and
 * `password: $ROUTE_PASSWORD` / `$GATEWAY_PASSWORD`, defined below. Production's one nats.conf also reads
 * the server's place from here (`server`): its cluster name, region tag and whether it runs JetStream,
 * all from the catalogue that the routes and gateways come from.
 */
import {
  natsAccounts,
  natsComponents,
  natsPermissions,
  natsSystemComponents,
  natsSystemPermissions,
  type NatsPermissions,
} from '#shared/nats-permissions.ts'
import { natsIdentities, type NatsCredentials, type NatsIdentity } from './credentials.ts'
import type { NatsGateway } from './topology.ts'

export interface JetStreamAccountLimits {
  /** e.g. "64MB" */
  maxMemory: string
  /** e.g. "20GB" */
  maxFile: string
  maxStreams: number
  maxConsumers: number
}

export interface AuthConfigOptions {
  dc: string
  /** Public nkeys per identity; two during a rotation (old and new), else one. */
  publicKeys: Record<NatsIdentity, string[]>
  routePassword: string
  gatewayPassword: string
  /** `host:port` of every server's cluster listener (a server ignores its route to itself); one or none: no cluster. */
  routeHosts: string[]
  /** The gateways the server connects to, every region's (topology.ts); none: no gateway block. */
  gateways?: NatsGateway[]
  /** For production's one nats.conf: the server's region (CLUSTER_NAME, REGION_TAG) and JETSTREAM. */
  server?: { region: string; jetstream: boolean }
  limits: JetStreamAccountLimits
  /** The datacenter's region and the registry's mirror regions, for the permissions (natsPermissions). */
  scope?: { region?: string; mirrorRegions?: readonly string[] }
}

/**
 * One rule for both files: a server with more than one route host (itself included) joins a cluster, and so
 * does one with gateways, if only with itself: nats-server 2.9.10 refuses to start JetStream in a
 * super-cluster without configured routes ("JetStream cluster requires configured routes"), which a
 * region of one server satisfies with its route to itself.
 */
export const isClustered = (routeHosts: readonly string[], gateways: readonly NatsGateway[] = []): boolean =>
  routeHosts.length > 1 || gateways.length > 0

/** The cluster's route user; its password is the only secret a route presents. */
export const routeUser = 'route'

/** The gateways' user; its password is the only secret a gateway presents. */
export const gatewayUser = 'gateway'

const permissionsBlock = (p: NatsPermissions) => ({
  publish: p.publish,
  subscribe: p.subscribe,
  ...(p.allowResponses ? { allow_responses: p.allowResponses } : {}),
})

export function natsAuthConfig(o: AuthConfigOptions): string {
  const permissions = natsPermissions(o.dc, o.scope ?? {})
  const users = natsComponents.flatMap((component) =>
    o.publicKeys[component].map(
      (nkey) =>
        `      # ${component}\n      ${JSON.stringify({ nkey, permissions: permissionsBlock(permissions[component]) })}`
    )
  )
  // The operator's `system` user may do anything in SYS (no permissions block); the job users only theirs.
  const systemPermissions = natsSystemPermissions()
  const systemUsers = [
    ...o.publicKeys.system.map((nkey) => `      ${JSON.stringify({ nkey })}`),
    ...natsSystemComponents.flatMap((component) =>
      o.publicKeys[component].map(
        (nkey) =>
          `      # ${component}\n      ${JSON.stringify({ nkey, permissions: permissionsBlock(systemPermissions[component]) })}`
      )
    ),
  ]
  const gateways = o.gateways ?? []
  const routes = o.routeHosts.map((h) => `nats-route://${routeUser}:${o.routePassword}@${h}`)
  const gatewayList = gateways.map((g) => ({
    name: g.name,
    urls: g.hosts.map((h) => `nats://${gatewayUser}:${o.gatewayPassword}@${h}`),
  }))
  // Variables nats.conf does not use are refused as unknown fields: routes only for a cluster, gateways
  // only with a gateway block, the server's place only for production's nats.conf. One line each, so
  // that deploy/check/catalogue.ts can read them back.
  const variables = [
    ...(o.server
      ? [
          `CLUSTER_NAME: ${JSON.stringify(o.server.region)}`,
          `REGION_TAG: ${JSON.stringify(`region:${o.server.region}`)}`,
          `JETSTREAM: ${String(o.server.jetstream)}`,
        ]
      : []),
    ...(isClustered(o.routeHosts, gateways)
      ? [`ROUTE_PASSWORD: ${JSON.stringify(o.routePassword)}`, `ROUTES: ${JSON.stringify(routes)}`]
      : []),
    ...(gateways.length > 0
      ? [`GATEWAY_PASSWORD: ${JSON.stringify(o.gatewayPassword)}`, `GATEWAYS: ${JSON.stringify(gatewayList)}`]
      : []),
  ]
  return `# Generated for datacenter ${o.dc} by local/nats-auth (shared/nats-permissions.ts): do not edit.
# Holds the route and gateway passwords: a secret (Docker secret in production, .local/ locally).
${variables.map((v) => `${v}\n`).join('')}
accounts {
  ${natsAccounts.app} {
    jetstream {
      max_mem: ${o.limits.maxMemory}
      max_file: ${o.limits.maxFile}
      max_streams: ${o.limits.maxStreams}
      max_consumers: ${o.limits.maxConsumers}
    }
    users: [
${users.join(',\n')}
    ]
  }
  ${natsAccounts.system} {
    users: [
${systemUsers.join(',\n')}
    ]
  }
}
system_account: ${natsAccounts.system}
`
}

/**
 * The account's JetStream limits for `servers` servers whose stores each hold `perServer`. A clustered
 * account's usage counts every replica (an R3 stream of 256 MB takes 768 MB of it), so a cluster's
 * limit is its servers' stores together; a lone server refuses to start with an account limit above
 * its own store.
 */
export function jetStreamLimitsFor(
  servers: number,
  perServer: { memoryMB: number; fileGB: number }
): JetStreamAccountLimits {
  const n = Math.max(1, servers)
  return {
    maxMemory: `${perServer.memoryMB * n}MB`,
    maxFile: `${perServer.fileGB * n}GB`,
    maxStreams: 32,
    maxConsumers: 256,
  }
}

/** The local platform's and the tests' servers store 64 MB in memory and 1 GB on file each (nats-config.ts). */
export const localServerStores = { memoryMB: 64, fileGB: 1 }

/** auth.conf from a credential set: each identity's key, and its previous one during a rotation. */
export function authConfigFor(
  credentials: NatsCredentials,
  o: Omit<AuthConfigOptions, 'publicKeys' | 'routePassword' | 'gatewayPassword'>
): string {
  const publicKeys = Object.fromEntries(
    natsIdentities.map((identity) => {
      const previous = credentials.previousPublicKey(identity)
      return [identity, [credentials.publicKey(identity), ...(previous ? [previous] : [])]]
    })
  ) as Record<NatsIdentity, string[]>
  return natsAuthConfig({
    ...o,
    publicKeys,
    routePassword: credentials.routePassword,
    gatewayPassword: credentials.gatewayPassword,
  })
}
