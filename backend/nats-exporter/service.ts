/**
 * The nats-exporter of one datacenter: Prometheus metrics (job `nats`) about its own datacenter's
 * nats-server, whose HTTP monitoring port listens inside its container only (it has no auth). It asks
 * through the system account instead, as its own least-privileged user (`nats-exporter`,
 * shared/nats-permissions.ts): `$SYS.REQ.SERVER.<id>.VARZ|JSZ|ROUTEZ|GATEWAYZ` on every scrape, `<id>`
 * being the server its connection is on (NATS_URL names only its datacenter's server), plus the TLS
 * certificate of the WebSocket listener when NATS_WS_TLS_URL is set.
 *
 * One HTTP listener (INTERNAL_HTTP_PORT, default 7777; never published): /metrics, /healthz (alive),
 * /readyz (ready once it has reached its server: a wrong seed or address never turns ready, so a bad
 * deploy rolls back; after that it stays ready while the server is away, since saying so in
 * nats_exporter_server_up is its job and a restart would only blind the monitoring). It is not one of the platform's services (shared/services.ts): it sends no
 * heartbeat and appears nowhere in /health, so monitoring can never change how the edge steers traffic.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { natsUserAuth } from '#shared/nats-permissions.ts'
import { errorMessage } from '#shared/error-message.ts'
import { ConfigError, loadConfig } from '../runtime/config.ts'
import { createLogger } from '../runtime/logger.ts'
import { createMetrics } from '../runtime/metrics.ts'
import { createInternalApp } from '../runtime/http.ts'
import { exporterConfigSchema, type ExporterConfig } from './config.ts'
import { takeSnapshot, type ServerSnapshot } from './server-snapshot.ts'
import { registerNatsMetrics, sharedScrape } from './metrics.ts'
import { readCertificateExpiry } from './certificate.ts'

const name = 'nats-exporter'

let config: ExporterConfig
try {
  config = loadConfig(exporterConfigSchema)
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  // Before the logger exists: one line on stderr, in the shape of every other log line (as runService).
  process.stderr.write(
    JSON.stringify({ level: 'fatal', service: name, msg: `${name}: ${error.message}` }) + '\n'
  )
  process.exit(78) // EX_CONFIG
}

const log = createLogger({ service: name, dc: config.DC }, config.LOG_LEVEL)
const metrics = createMetrics({ service: name, dc: config.DC })
const labelServer = (serverName: string) =>
  metrics.registry.setDefaultLabels({ service: name, dc: config.DC, server_name: serverName })
if (config.NATS_SERVER_NAME) labelServer(config.NATS_SERVER_NAME)

/** The connection once made (before: /metrics says server_up 0). */
const nats: { nc?: NatsConnection } = {}
let stopping = false

/** Logs when the server stops or starts answering, not on every scrape. */
let lastDown: string | null | undefined
const note = (server: ServerSnapshot) => {
  const down = server.up ? null : server.reason
  if (down === lastDown) return
  if (down === null) log.info('nats-server answers')
  else if (lastDown === null || lastDown === undefined)
    log.warn({ reason: down }, 'nats-server does not answer')
  lastDown = down
}

const wsTls = config.NATS_WS_TLS_URL
const scrape = sharedScrape(async () => {
  const [server, certificateNotAfter] = await Promise.all([
    nats.nc
      ? takeSnapshot(nats.nc, {
          timeoutMs: config.NATS_REQUEST_TIMEOUT_MS,
          expectedServerName: config.NATS_SERVER_NAME,
        })
      : ({ up: false, reason: 'not connected yet' } as const),
    wsTls
      ? readCertificateExpiry(wsTls, {
          ca: config.NATS_WS_TLS_CA_FILE,
          servername: config.NATS_WS_TLS_SERVERNAME,
          timeoutMs: config.NATS_REQUEST_TIMEOUT_MS,
        }).then(
          (reading) => reading.notAfter,
          (error: unknown) => {
            log.warn({ url: wsTls.href, err: errorMessage(error) }, 'websocket certificate not read')
            return undefined
          }
        )
      : undefined,
  ])
  note(server)
  return { server, certificateNotAfter }
})
registerNatsMetrics(metrics.registry, scrape)

const app = createInternalApp(
  metrics,
  () => Promise.resolve(stopping ? 'stopping' : !nats.nc ? 'starting' : null),
  log
)
const server = await new Promise<Server>((resolve, reject) => {
  const s = app
    .listen(config.INTERNAL_HTTP_PORT, config.INTERNAL_HTTP_HOST, () => resolve(s))
    .once('error', reject)
})
log.info(
  { port: (server.address() as AddressInfo).port, host: config.INTERNAL_HTTP_HOST },
  `${name} listening`
)

// Waits for the server as long as it takes (meanwhile /metrics says server_up 0); then reconnects forever,
// to this datacenter's server only (its cluster's other servers are other exporters' to report).
const nc = await connect({
  servers: config.NATS_URL.split(',').map((s) => s.trim()),
  name: `${name}@${config.DC}`,
  ...natsUserAuth(name, config.NATS_NKEY_SEED),
  noRandomize: true,
  maxReconnectAttempts: -1,
  reconnectTimeWait: 500,
  waitOnFirstConnect: true,
  pingInterval: 10_000,
  ignoreClusterUpdates: true,
})
nats.nc = nc
if (!config.NATS_SERVER_NAME && nc.info) labelServer(nc.info.server_name)
log.info({ server: nc.getServer(), serverName: nc.info?.server_name }, 'nats connected')
void (async () => {
  for await (const status of nc.status()) {
    if (status.type === 'disconnect') {
      metrics.natsDisconnects.inc()
      log.warn({ server: status.server }, 'nats disconnected')
    } else if (status.type === 'reconnect') {
      metrics.natsReconnects.inc()
      log.info({ server: status.server, serverName: nc.info?.server_name }, 'nats reconnected')
    } else if (status.type === 'error') log.error({ err: status.error }, 'nats error')
  }
})()

const shutdown = async (signal: string) => {
  if (stopping) return
  stopping = true
  log.info({ signal }, 'shutting down')
  setTimeout(() => process.exit(1), config.SHUTDOWN_GRACE_MS).unref()
  server.closeAllConnections()
  await Promise.all([new Promise((resolve) => server.close(resolve)), nc.close()])
  log.info('stopped')
  process.exit(0)
}
process.once('SIGTERM', () => void shutdown('SIGTERM'))
process.once('SIGINT', () => void shutdown('SIGINT'))
