/** Prometheus metrics every service exposes at /metrics. */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client'

export interface RuntimeMetrics {
  registry: Registry
  httpRequests: Counter<'route' | 'method' | 'status'>
  httpDuration: Histogram<'route' | 'method'>
  natsReconnects: Counter
  natsDisconnects: Counter
}

export function createMetrics(labels: { service: string; dc: string }): RuntimeMetrics {
  const registry = new Registry()
  registry.setDefaultLabels(labels)
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests served, by route and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    natsReconnects: new Counter({
      name: 'nats_reconnects_total',
      help: 'Times the NATS connection was re-established',
      registers: [registry],
    }),
    natsDisconnects: new Counter({
      name: 'nats_disconnects_total',
      help: 'Times the NATS connection was lost',
      registers: [registry],
    }),
  }
}
