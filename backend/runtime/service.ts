/**
 * runService: what every backend service shares, in order: validated config, logger, metrics,
 * HTTP (the internal listener with health, readiness and metrics; the public one with the
 * service's routes), NATS, the service itself, heartbeats, graceful shutdown.
 *
 * Shutdown on SIGTERM/SIGINT: stop being ready, stop accepting HTTP connections, let the service
 * stop taking work (drain its subscriptions), wait for in-flight work, drain NATS, exit 0 — or exit 1
 * if that takes longer than SHUTDOWN_GRACE_MS.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Express, Router } from 'express'
import type { z } from 'zod'
import type { NatsConnection } from '@nats-io/nats-core'
import type { ServiceName } from '#shared/services.ts'
import type { ServiceState } from '#shared/schemas.ts'
import { ConfigError, loadConfig, type BaseConfig } from './config.ts'
import { createLogger, type Logger } from './logger.ts'
import { createMetrics, type RuntimeMetrics } from './metrics.ts'
import { createHttpApp, createInternalApp } from './http.ts'
import { connectNats, type NatsHandle } from './nats.ts'
import { startHeartbeat } from './heartbeat.ts'
import { InFlight } from './in-flight.ts'

export interface ServiceContext<C extends BaseConfig> {
  config: C
  log: Logger
  nc: NatsConnection
  nats: NatsHandle
  /** The public port's routes; paths none of them takes, and every error, end in runtime/http.ts. */
  http: Router
  metrics: RuntimeMetrics
  inFlight: InFlight
}

export interface RunningService {
  /** Stop taking new work (drain subscriptions, stop consumers). In-flight work is awaited afterwards. */
  stop?(): Promise<void>
}

export interface ServiceDefinition<S extends z.ZodObject> {
  name: ServiceName
  config: S
  start(ctx: ServiceContext<z.infer<S> & BaseConfig>): Promise<RunningService> | RunningService
}

export async function runService<S extends z.ZodObject>(definition: ServiceDefinition<S>): Promise<void> {
  let config: z.infer<S> & BaseConfig
  try {
    // Every service schema extends baseConfigSchema, so the base fields are there.
    config = loadConfig(definition.config) as z.infer<S> & BaseConfig
    // Health and metrics must never be reachable on the public port.
    if (config.INTERNAL_HTTP_PORT !== 0 && config.INTERNAL_HTTP_PORT === config.HTTP_PORT)
      throw new ConfigError(
        `invalid configuration: INTERNAL_HTTP_PORT=${config.INTERNAL_HTTP_PORT}: must differ from HTTP_PORT`
      )
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    // Before the logger exists: one line on stderr, in the same JSON shape as every other log line.
    process.stderr.write(
      JSON.stringify({
        level: 'fatal',
        service: definition.name,
        msg: `${definition.name}: ${error.message}`,
      }) + '\n'
    )
    process.exit(78) // EX_CONFIG
  }

  const log = createLogger({ service: definition.name, dc: config.DC }, config.LOG_LEVEL)
  const metrics = createMetrics({ service: definition.name, dc: config.DC })
  const inFlight = new InFlight()
  let state: ServiceState = 'starting'

  const internal = createInternalApp(
    metrics,
    async () => {
      if (state !== 'ready') return state
      // `nats` is declared below, and set before state first becomes 'ready'.
      if (!nats.connected()) return 'nats_disconnected'
      if (!(await nats.jetstreamReady())) return 'jetstream_unavailable'
      return null
    },
    log
  )
  const { app: http, routes } = createHttpApp(metrics, {
    stopping: () => state === 'stopping',
    inFlight,
    log,
  })
  const listen = (app: Express, port: number, host: string): Promise<Server> =>
    new Promise((resolve, reject) => {
      const s = app.listen(port, host, () => resolve(s)).once('error', reject)
    })
  // Internal first: health checks see "starting" while the rest comes up. It stays open during
  // shutdown, so /readyz says "stopping" until the process exits.
  const internalServer = await listen(internal, config.INTERNAL_HTTP_PORT, config.INTERNAL_HTTP_HOST)
  const server = await listen(http, config.HTTP_PORT, config.HTTP_HOST)
  const port = (server.address() as AddressInfo).port
  const internalPort = (internalServer.address() as AddressInfo).port

  const nats = await connectNats(
    {
      servers: config.NATS_URL,
      name: `${definition.name}@${config.DC}`,
      component: definition.name,
      seed: config.NATS_NKEY_SEED,
    },
    log,
    metrics
  )
  const running = await definition.start({ config, log, nc: nats.nc, nats, http: routes, metrics, inFlight })
  state = 'ready'
  const heartbeat = startHeartbeat(
    nats.nc,
    { dc: config.DC, service: definition.name },
    () => state,
    config.HEARTBEAT_INTERVAL_MS
  )
  log.info(
    { port, host: config.HTTP_HOST, internalPort, internalHost: config.INTERNAL_HTTP_HOST },
    `${definition.name} ready`
  )

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    state = 'stopping'
    heartbeat.beat()
    log.info({ signal, inFlight: inFlight.count }, 'shutting down')
    const deadline = setTimeout(() => {
      log.error(
        { inFlight: inFlight.count },
        `shutdown took longer than ${config.SHUTDOWN_GRACE_MS} ms; exiting`
      )
      process.exit(1)
    }, config.SHUTDOWN_GRACE_MS)
    deadline.unref()
    const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeIdleConnections()
    try {
      await running.stop?.()
      await inFlight.idle()
      // Every request has been answered (HTTP requests count as in flight): what is left are idle
      // keep-alive connections, which would otherwise hold the server open until they time out.
      server.closeAllConnections()
      heartbeat.stop()
      await nats.nc.drain()
      await httpClosed
      log.info('stopped')
      process.exit(0)
    } catch (err) {
      log.error({ err }, 'shutdown failed')
      process.exit(1)
    }
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))
}
