/**
 * The operator's NATS connection for a backup or a restore. With `NATS_URL` set (production: a
 * datacenter's NATS reached as the runbook says, comma-separated URLs allowed) it connects there as
 * the operator with the seed in `NATS_NKEY_SEED_FILE`; without it, to the running `npm start`
 * platform exactly as the other operator commands do (local/operator-nats.ts). The `servers` it
 * returns are recorded in the backup's manifest.json, so any user, password or token in
 * `NATS_URL` is stripped from them.
 */
import { readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { natsUserAuth } from '#shared/nats-permissions.ts'
import { errnoCode, errorMessage } from '#shared/error-message.ts'
import { connectOperatorNats } from '../operator-nats.ts'
import { readRunningState } from '../state.ts'

export async function connectForBackup(
  env: NodeJS.ProcessEnv = process.env
): Promise<{ nc: NatsConnection; servers: string }> {
  const url = env.NATS_URL
  if (!url) {
    const { statePath, state } = readRunningState(env)
    const nc = await connectOperatorNats(state, dirname(statePath))
    return { nc, servers: nc.getServer() }
  }
  const seedFile = env.NATS_NKEY_SEED_FILE
  if (!seedFile) throw new Error("NATS_URL is set: NATS_NKEY_SEED_FILE must name the operator's seed file")
  let seed: string
  try {
    seed = readFileSync(seedFile, 'utf8').trim()
  } catch (error) {
    throw new Error(
      `the operator's NATS seed ${seedFile} cannot be read (${errnoCode(error) ?? errorMessage(error)})`
    )
  }
  const servers = url.split(',').map((s) => s.trim())
  const nc = await connect({
    servers,
    name: 'registry-backup',
    timeout: 5_000,
    ...natsUserAuth('operator', seed),
  })
  return { nc, servers: withoutCredentials(url) }
}

/** Comma-separated NATS URLs without the credentials any of them carries (`nats://user:pass@host`). */
export function withoutCredentials(urls: string): string {
  return urls
    .split(',')
    .map((raw) => {
      const s = raw.trim()
      const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(s)
      try {
        const url = new URL(scheme ? s : `nats://${s}`)
        url.username = ''
        url.password = ''
        return scheme ? url.href : url.host
      } catch {
        // Unparsable: it may still hold a secret, so it is not recorded.
        return '(unparsable URL)'
      }
    })
    .join(',')
}
