/**
 * The operator's NATS connection for commands that change the registry (`npm run swarm -- enroll`,
 * `transfer`): one function, so the credentials the operator needs are added in one place.
 * For now: the first datacenter's NATS URL from `.local/state.json`.
 */
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import type { StateFile } from './state.ts'

export async function connectOperatorNats(state: StateFile): Promise<NatsConnection> {
  const nats = state.processes.find((p) => p.service === 'nats')
  if (!nats) throw new Error('no nats-server in state.json: is `npm start` running?')
  return connect({ servers: nats.url, name: 'operator', timeout: 5_000 })
}
