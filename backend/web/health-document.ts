/** Builds the datacenter's health document (GET /health), the edge's view of this datacenter. */
import type { HealthDocument } from '#shared/schemas.ts'
import type { NatsHandle } from '../runtime/nats.ts'
import type { HeartbeatRegistry } from './heartbeats.ts'

export async function healthDocument(
  dc: string,
  nats: NatsHandle,
  heartbeats: HeartbeatRegistry,
  o: { awayFromHome?: boolean } = {}
): Promise<HealthDocument> {
  const connected = nats.connected()
  const jetstream = connected && (await nats.jetstreamReady())
  const services: HealthDocument['services'] = heartbeats.snapshot()
  // The web service answers this very request, so it is ready by definition when NATS is.
  services.web = { state: connected ? 'ready' : 'not_ready', lastSeen: Date.now() }
  const allReady = Object.values(services).every((s) => s.state === 'ready')
  // Without NATS the datacenter serves nothing: down. Without JetStream, down in the home region (its own
  // server or the cluster has failed: the edge takes its traffic elsewhere, e.g. a full disk), but degraded
  // in another region, where it means the ocean to the home region is cut while images and the registry's
  // mirror still answer (issue #15): the edge keeps sending it what it can, `nats.jetstream` says the rest.
  const status = !connected
    ? 'down'
    : !jetstream
      ? o.awayFromHome
        ? 'degraded'
        : 'down'
      : allReady
        ? 'ok'
        : 'degraded'
  return { dc, status, nats: { connected, jetstream }, services, at: Date.now() }
}
