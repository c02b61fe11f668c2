/**
 * The NATS credentials of this test process: every nats-server a test starts trusts them, every
 * service it starts gets its own component's seed, and a test's own client connects as the operator
 * (or as a component, to prove what that component may not do). Created once per process in a
 * temporary directory, as `npm start` creates its own under `.local/`.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ConnectionOptions } from '@nats-io/nats-core'
import { natsUserAuth, type NatsComponent } from '#shared/nats-permissions.ts'
import { ensureNatsCredentials, type NatsCredentials } from '../../local/nats-auth/credentials.ts'

let credentials: NatsCredentials | undefined

export function testNatsCredentials(): NatsCredentials {
  credentials ??= ensureNatsCredentials(join(mkdtempSync(join(tmpdir(), 'vtta-nats-creds-')), 'nats'))
  return credentials
}

/** Connection options that authenticate as `component` (default: the operator, who may do anything). */
export function natsAuth(
  component: NatsComponent = 'operator'
): Pick<ConnectionOptions, 'authenticator' | 'inboxPrefix'> {
  return natsUserAuth(component, testNatsCredentials().seed(component))
}
