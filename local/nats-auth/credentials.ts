/**
 * NATS credentials: one nkey seed per component (shared/nats-permissions.ts), one for each of the
 * system account's users (the operator's `system`, the nats-exporter), and the passwords the servers'
 * cluster routes and gateways (between regions) authenticate with. Stored one file
 * each in a directory (mode 0700, files 0600), so each process can be handed exactly its own seed
 * file (`NATS_NKEY_SEED_FILE`), as Docker secrets hand one to each service in production.
 *
 * Created once and then reused: `npm start` keeps them under `.local/secrets/nats/`, a test run in
 * a temporary directory, the operator's `npm run nats-auth` wherever it is told (never in git).
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createUser, fromSeed } from '@nats-io/nkeys'
import {
  natsComponents,
  natsSystemComponents,
  type NatsComponent,
  type NatsSystemComponent,
} from '#shared/nats-permissions.ts'

/**
 * `system`: the operator's user of the system account (server monitoring and JetStream operations,
 * never a service); the system account's job users (the nats-exporter) hold only their own permissions.
 */
export type NatsIdentity = NatsComponent | NatsSystemComponent | 'system'
export const natsIdentities: readonly NatsIdentity[] = [...natsComponents, ...natsSystemComponents, 'system']

export interface NatsCredentials {
  dir: string
  /** Path of the file holding `identity`'s seed (what `NATS_NKEY_SEED_FILE` names). */
  seedFile(identity: NatsIdentity): string
  seed(identity: NatsIdentity): string
  publicKey(identity: NatsIdentity): string
  /** The key being rotated out (still trusted until retired), if a rotation is under way. */
  previousPublicKey(identity: NatsIdentity): string | undefined
  routePassword: string
  gatewayPassword: string
}

const writeSecret = (path: string, value: string) => {
  writeFileSync(path, `${value}\n`, { mode: 0o600 })
  chmodSync(path, 0o600)
}

const publicKeyOf = (seed: string) => fromSeed(new TextEncoder().encode(seed)).getPublicKey()

/**
 * Starts rotating `identity`'s key: the current seed becomes `<identity>.previous.nk` (still
 * trusted) and a new one is made. Servers trust both until `retireNatsKey` (docs/operations.md).
 */
export function rotateNatsKey(dir: string, identity: NatsIdentity): void {
  const current = join(dir, `${identity}.nk`)
  const previous = join(dir, `${identity}.previous.nk`)
  if (existsSync(previous)) throw new Error(`${identity}: a rotation is already under way (retire it first)`)
  renameSync(current, previous)
  ensureNatsCredentials(dir)
}

/** Ends a rotation: the previous key is no longer trusted once the servers get the new auth.conf. */
export function retireNatsKey(dir: string, identity: NatsIdentity): void {
  rmSync(join(dir, `${identity}.previous.nk`), { force: true })
}

/** Loads the credentials in `dir`, creating whichever are missing (existing ones are kept). */
export function ensureNatsCredentials(dir: string): NatsCredentials {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
  const seedFile = (identity: NatsIdentity) => join(dir, `${identity}.nk`)
  for (const identity of natsIdentities) {
    if (!existsSync(seedFile(identity)))
      writeSecret(seedFile(identity), new TextDecoder().decode(createUser().getSeed()))
  }
  // A credentials directory made before gateways existed gets its gateway password here, like any missing file.
  const passwordFile = (name: string) => {
    const file = join(dir, `${name}-password`)
    if (!existsSync(file)) writeSecret(file, randomBytes(32).toString('base64url'))
    return file
  }
  const [routePasswordFile, gatewayPasswordFile] = [passwordFile('route'), passwordFile('gateway')]

  const seeds = new Map(
    natsIdentities.map((identity) => [identity, readFileSync(seedFile(identity), 'utf8').trim()])
  )
  const publicKeys = new Map([...seeds].map(([identity, seed]) => [identity, publicKeyOf(seed)]))
  const previousFile = (identity: NatsIdentity) => join(dir, `${identity}.previous.nk`)
  const previous = new Map(
    natsIdentities
      .filter((identity) => existsSync(previousFile(identity)))
      .map((identity) => [identity, publicKeyOf(readFileSync(previousFile(identity), 'utf8').trim())])
  )
  return {
    dir,
    seedFile,
    previousPublicKey: (identity) => previous.get(identity),
    seed: (identity) => seeds.get(identity)!,
    publicKey: (identity) => publicKeys.get(identity)!,
    routePassword: readFileSync(routePasswordFile, 'utf8').trim(),
    gatewayPassword: readFileSync(gatewayPasswordFile, 'utf8').trim(),
  }
}
