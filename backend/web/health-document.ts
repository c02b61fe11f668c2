/** Builds the datacenter's health document (GET /health), the edge's view of this datacenter. */
import type { HealthDocument } from '#shared/schemas.ts'
import type { NatsHandle } from '../runtime/nats.ts'
import type { HeartbeatRegistry } from './heartbeats.ts'

export async function healthDocument(
  dc: string,
  nats: NatsHandle,
  heartbeats: HeartbeatRegistry
): Promise<HealthDocument> {
  const connected = nats.connected()
  const jetstream = connected && (await nats.jetstreamReady())
  const services: HealthDocument['services'] = heartbeats.snapshot()
  // The web service answers this very request, so it is ready by definition when NATS is.
  services.web = { state: connected ? 'ready' : 'not_ready', lastSeen: Date.now() }
  const allReady = Object.values(services).every((s) => s.state === 'ready')
  // Without NATS the datacenter serves nothing: down. Without JetStream it still serves images and registry
  // reads (a mirror, in a region cut off from the home region by an ocean; issue #15): degraded, so the edge
  // keeps sending it what it can answer, and `nats.jetstream` says what it cannot.
  const status = !connected ? 'down' : jetstream && allReady ? 'ok' : 'degraded'
  return { dc, status, nats: { connected, jetstream }, services, at: Date.now() }
}
