/**
 * `npm run nats-auth -- <dir> [rotate|retire <identity>]`: the operator's NATS credentials for
 * production. Keeps one seed per component and the route and gateway passwords in <dir> (created when
 * missing; never commit it) and writes `auth-<dc>.conf` for every datacenter of the production catalogue,
 * each the Docker secret `nats_auth_<dc>` that its nats-server includes: with the server's region
 * (cluster name, tag), whether it runs JetStream, its routes (its region's servers only) and every
 * region's gateways (topology.ts), checked against the catalogue before anything is written.
 * docs/operations.md has the whole procedure.
 *
 *   rotate <identity>   a new key for it; servers trust old and new until `retire`
 *   retire <identity>   the old key is no longer trusted
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseCatalogue } from '#shared/catalogue.ts'
import { jetStreamLayout, quorumProblem, type RegionMember } from '#shared/regions.ts'
import { authConfigFor, jetStreamLimitsFor, type AuthConfigOptions } from './auth-config.ts'
import { jetStreamServers, natsServerTopology } from './topology.ts'
import { authTopologyProblems, productionListeners } from './topology-check.ts'
import {
  ensureNatsCredentials,
  natsIdentities,
  retireNatsKey,
  rotateNatsKey,
  type NatsIdentity,
} from './credentials.ts'
import { projectRoot } from '../platform-specs.ts'
import { errorMessage } from '#shared/error-message.ts'

/** Each production server's stores (deploy/nats.conf: max_memory_store 256MB, max_file_store 20GB). */
export const productionServerStores = { memoryMB: 256, fileGB: 20 }

/**
 * What the auth.conf of each production server says besides its keys and passwords, by datacenter id:
 * production servers are the Swarm services nats-<dc>, routed on 6222 and gatewayed on 7222 over the
 * overlay, and production's one nats.conf always has its gateway block (a single region lists itself).
 * The permissions are scoped to the server's region and the registry's mirror regions as npm start
 * scopes its own (platform-specs.ts); a catalogue without a home region (the deploy check reads one
 * before it validates) gets no mirrors.
 */
export function productionAuthOptions(
  catalogue: readonly RegionMember[]
): Map<string, Omit<AuthConfigOptions, 'publicKeys' | 'routePassword' | 'gatewayPassword'>> {
  const reach = (_from: number, to: number) => productionListeners(catalogue[to]!.id)
  const limits = jetStreamLimitsFor(jetStreamServers(catalogue), productionServerStores)
  const mirrorRegions = quorumProblem(catalogue) ? [] : jetStreamLayout(catalogue).mirrorRegions
  return new Map(
    catalogue.map((dc, i) => {
      const t = natsServerTopology(catalogue, i, reach)
      return [
        dc.id,
        {
          dc: dc.id,
          server: { region: t.region, jetstream: t.jetstream },
          scope: { region: t.region, mirrorRegions },
          routeHosts: t.routeHosts,
          gateways: t.gateways,
          limits,
        },
      ]
    })
  )
}

export const productionAuthFile = (dc: string) => `auth-${dc}.conf`

/** Writes auth-<dc>.conf for every datacenter of `catalogue` into `dir`, once they agree with it. */
export function writeProductionAuth(dir: string, catalogue: readonly RegionMember[]): string[] {
  const credentials = ensureNatsCredentials(dir)
  const confs = new Map(
    [...productionAuthOptions(catalogue)].map(([dc, o]) => [dc, authConfigFor(credentials, o)])
  )
  const problems = authTopologyProblems(catalogue, confs, productionAuthFile)
  if (problems.length > 0) throw new Error(`refusing to write auth.conf files:\n${problems.join('\n')}`)
  return [...confs].map(([dc, conf]) => {
    const file = join(dir, productionAuthFile(dc))
    writeFileSync(file, conf, { mode: 0o600 })
    return file
  })
}

function main(args: string[]): void {
  const [dirArg, action, identity] = args
  if (!dirArg) throw new Error('usage: npm run nats-auth -- <dir> [rotate|retire <identity>]')
  const dir = resolve(dirArg)
  if (action) {
    if (!natsIdentities.includes(identity as NatsIdentity))
      throw new Error(`identity must be one of ${natsIdentities.join(', ')}`)
    if (action === 'rotate') rotateNatsKey(dir, identity as NatsIdentity)
    else if (action === 'retire') retireNatsKey(dir, identity as NatsIdentity)
    else throw new Error(`unknown action ${action} (rotate or retire)`)
  }
  const catalogue = parseCatalogue(
    JSON.parse(readFileSync(join(projectRoot, 'deploy', 'datacenters.production.json'), 'utf8')),
    'deploy/datacenters.production.json'
  )
  for (const file of writeProductionAuth(dir, catalogue)) console.log(`wrote ${file}`)
  console.log(`seeds: ${natsIdentities.map((i) => join(dir, `${i}.nk`)).join(' ')}`)
}

if (import.meta.main) {
  try {
    main(process.argv.slice(2))
  } catch (error) {
    console.error(`nats-auth: ${errorMessage(error)}`)
    process.exit(2)
  }
}
