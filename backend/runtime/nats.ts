/**
 * The service's NATS connection: reconnects forever (a datacenter's NATS restarting must not kill
 * the service), prefers the first URL (the datacenter's own server), and reports its readiness.
 */
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { natsUserAuth, type NatsComponent } from '#shared/nats-permissions.ts'
import { jetstreamManager } from '@nats-io/jetstream'
import type { Logger } from './logger.ts'
import type { RuntimeMetrics } from './metrics.ts'

export interface NatsHandle {
  nc: NatsConnection
  /** True while connected (not reconnecting, not closed). */
  connected(): boolean
  /** True when the JetStream API answers; the answer is memoised briefly so /readyz stays cheap. */
  jetstreamReady(): Promise<boolean>
}

const JETSTREAM_CHECK_TTL_MS = 1_000
const JETSTREAM_CHECK_TIMEOUT_MS = 1_500

export async function connectNats(
  opts: { servers: string; name: string; component: NatsComponent; seed: string },
  log: Logger,
  metrics: RuntimeMetrics
): Promise<NatsHandle> {
  const nc = await connect({
    servers: opts.servers.split(',').map((s) => s.trim()),
    name: opts.name,
    // The component's own user: its permissions allow replies only on its own inbox prefix.
    ...natsUserAuth(opts.component, opts.seed),
    noRandomize: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
    // NATS_URL is authoritative: a service stays with its own datacenter's server.
    ignoreClusterUpdates: true,
  })
  let connected = true
  log.info({ server: nc.getServer() }, 'nats connected')

  void (async () => {
    for await (const status of nc.status()) {
      switch (status.type) {
        case 'disconnect':
          connected = false
          metrics.natsDisconnects.inc()
          log.warn({ server: status.server }, 'nats disconnected')
          break
        case 'reconnect':
          connected = true
          metrics.natsReconnects.inc()
          log.info({ server: status.server }, 'nats reconnected')
          break
        case 'error':
          log.error({ err: status.error }, 'nats error')
          break
        case 'ldm':
          log.warn({ server: status.server }, 'nats server entering lame duck mode')
          break
        case 'staleConnection':
          // The server stopped answering pings; the client drops the connection and reconnects.
          log.warn('nats connection stale (pings unanswered); reconnecting')
          break
        case 'slowConsumer':
          log.warn(
            { subject: status.sub.getSubject(), pending: status.pending },
            'nats slow consumer: messages are piling up'
          )
          break
        // Steps on the way to the states above (attempts, pings, the server list, a requested
        // reconnect), and the close that nc.closed() below reports.
        case 'reconnecting':
        case 'ping':
        case 'update':
        case 'forceReconnect':
        case 'close':
          break
      }
    }
  })()
  void nc.closed().then((err) => {
    connected = false
    if (err) log.error({ err }, 'nats connection closed with error')
  })

  let lastCheck = { at: 0, ok: false }
  const jsm = await jetstreamManager(nc, { timeout: JETSTREAM_CHECK_TIMEOUT_MS, checkAPI: false })
  return {
    nc,
    connected: () => connected && !nc.isClosed(),
    async jetstreamReady() {
      if (!connected || nc.isClosed()) return false
      if (Date.now() - lastCheck.at < JETSTREAM_CHECK_TTL_MS) return lastCheck.ok
      const ok = await jsm.getAccountInfo().then(
        () => true,
        () => false
      )
      lastCheck = { at: Date.now(), ok }
      return ok
    },
  }
}
