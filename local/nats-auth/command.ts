/**
 * `npm run nats-auth -- <dir> [rotate|retire <identity>]`: the operator's NATS credentials for
 * production. Keeps one seed per component in <dir> (created when missing; never commit it) and
 * writes `auth-<dc>.conf` for every datacenter of the production catalogue, each the Docker secret
 * `nats_auth_<dc>` that its nats-server includes. docs/operations.md has the whole procedure.
 *
 *   rotate <identity>   a new key for it; servers trust old and new until `retire`
 *   retire <identity>   the old key is no longer trusted
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseCatalogue } from '#shared/catalogue.ts'
import { authConfigFor, jetStreamLimitsFor } from './auth-config.ts'
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

/** Production servers are the Swarm services nats-<dc>, routed over the overlay on 6222. */
export const productionRouteHost = (dc: string) => `nats-${dc}:6222`

export function writeProductionAuth(dir: string, datacenters: string[]): string[] {
  const credentials = ensureNatsCredentials(dir)
  return datacenters.map((dc) => {
    const file = join(dir, `auth-${dc}.conf`)
    writeFileSync(
      file,
      authConfigFor(credentials, {
        dc,
        routeHosts: datacenters.map(productionRouteHost),
        limits: jetStreamLimitsFor(datacenters.length, productionServerStores),
      }),
      { mode: 0o600 }
    )
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
  for (const file of writeProductionAuth(
    dir,
    catalogue.map((dc) => dc.id)
  ))
    console.log(`wrote ${file}`)
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
