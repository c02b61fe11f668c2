/**
 * The operator's NATS connection for commands that change the registry (`npm run swarm -- enroll`,
 * `transfer`): one function, so the operator's credential is read in one place. It connects to the
 * first datacenter's NATS server of `.local/state.json` as the operator's own NATS user: the seed in
 * `NATS_NKEY_SEED_FILE` when set (production: the operator's `operator.nk` from `npm run nats-auth`),
 * else the local platform's `<LOCAL_DIR>/secrets/nats/operator.nk`.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { natsUserAuth } from '#shared/nats-permissions.ts'
import type { StateFile } from './state.ts'
import { errnoCode, errorMessage } from '#shared/error-message.ts'

export async function connectOperatorNats(state: StateFile, localDir: string): Promise<NatsConnection> {
  const nats = state.processes.find((p) => p.service === 'nats')
  if (!nats) throw new Error('no nats-server in state.json: is `npm start` running?')
  const seedFile = process.env.NATS_NKEY_SEED_FILE || join(localDir, 'secrets', 'nats', 'operator.nk')
  let seed: string
  try {
    seed = readFileSync(seedFile, 'utf8').trim()
  } catch (error) {
    throw new Error(
      `the operator's NATS seed ${seedFile} cannot be read (${errnoCode(error) ?? errorMessage(error)})`
    )
  }
  return connect({
    servers: nats.url,
    name: 'operator',
    timeout: 5_000,
    ...natsUserAuth('operator', seed),
  })
}
