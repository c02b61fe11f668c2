/**
 * Where each local datacenter listens. The n-th datacenter of the catalogue binds 127.0.n.1
 * (contract), so every datacenter uses the same ports, as in production.
 */
import type { ServiceName } from '#shared/services.ts'

export const ports = {
  natsClient: 4222,
  natsCluster: 6222,
  /** The gateway listener: one per server, joining its region's cluster to the others (issue #15). */
  natsGateway: 7222,
  natsMonitor: 8222,
  natsWebSocket: 8443,
  /** The datacenter's nats-exporter: /metrics (Prometheus job `nats`), /healthz, /readyz. */
  natsExporter: 7777,
  services: { web: 8080, images: 8081, releases: 8082, notifier: 8083 } satisfies Record<ServiceName, number>,
  /** Each service's internal port (/healthz, /readyz, /metrics), never published in production. */
  internal: { web: 9080, images: 9081, releases: 9082, notifier: 9083 } satisfies Record<ServiceName, number>,
} as const

/** The local stand-ins for services we cannot reach from here, on 127.0.0.1. */
export const standIns = {
  github: { port: 8790, url: 'http://127.0.0.1:8790', readyPath: '/_control/requests' },
  discord: {
    port: 8791,
    url: 'http://127.0.0.1:8791',
    readyPath: '/_control/calls',
    /** A webhook URL the Discord stand-in answers. */
    webhookUrl: 'http://127.0.0.1:8791/api/webhooks/123456789012345678/stand-in-webhook-token',
    /** The operator's webhook (rejection notices), another webhook of the same stand-in. */
    operatorWebhookUrl: 'http://127.0.0.1:8791/api/webhooks/223456789012345678/stand-in-operator-token',
  },
} as const

export function loopbackAddress(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 253)
    throw new RangeError(`no loopback address for datacenter #${index + 1}`)
  return `127.0.${index + 1}.1`
}

export interface DatacenterAddresses {
  host: string
  natsUrl: string
  /** `host:port` of the cluster listener (routes carry their credentials: local/nats-auth). */
  natsClusterHost: string
  /** `host:port` of the gateway listener (gateways carry their credentials: local/nats-auth). */
  natsGatewayHost: string
  natsMonitorUrl: string
  natsWsUrl: string
  /** Where the datacenter's nats-exporter answers /metrics, /healthz and /readyz. */
  natsExporterUrl: string
  serviceUrl(service: ServiceName): string
  /** Where a service answers /healthz, /readyz and /metrics. */
  internalUrl(service: ServiceName): string
}

export function datacenterAddresses(index: number): DatacenterAddresses {
  const host = loopbackAddress(index)
  return {
    host,
    natsUrl: `nats://${host}:${ports.natsClient}`,
    natsClusterHost: `${host}:${ports.natsCluster}`,
    natsGatewayHost: `${host}:${ports.natsGateway}`,
    natsMonitorUrl: `http://${host}:${ports.natsMonitor}`,
    natsWsUrl: `ws://${host}:${ports.natsWebSocket}`,
    natsExporterUrl: `http://${host}:${ports.natsExporter}`,
    serviceUrl: (service) => `http://${host}:${ports.services[service]}`,
    internalUrl: (service) => `http://${host}:${ports.internal[service]}`,
  }
}
