/** Announces the service's state on NATS so the datacenter's /health can list every service. */
import type { NatsConnection } from '@nats-io/nats-core'
import { subjects } from '#shared/subjects.ts'
import type { Heartbeat, ServiceState } from '#shared/schemas.ts'
import type { ServiceName } from '#shared/services.ts'

export function startHeartbeat(
  nc: NatsConnection,
  identity: { dc: string; service: ServiceName },
  state: () => ServiceState,
  intervalMs: number
): { beat(): void; stop(): void } {
  const subject = subjects.heartbeat(identity.dc, identity.service)
  const beat = () => {
    if (nc.isClosed() || nc.isDraining()) return
    const message: Heartbeat = { ...identity, state: state(), at: Date.now() }
    nc.publish(subject, JSON.stringify(message))
  }
  beat()
  const timer = setInterval(beat, intervalMs)
  timer.unref()
  return { beat, stop: () => clearInterval(timer) }
}
