/**
 * The job `nats` metrics (names and labels: the shared contract of issue #14), computed when
 * Prometheus scrapes: every metric's collect() awaits the same scrape (one set of server requests
 * however many metrics ask), then sets its figures from it. A figure the scrape did not get is
 * absent, never the previous one: `nats_exporter_server_up` 0 and nothing else about the server.
 * `dc` and `server_name` are the registry's default labels (service.ts).
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import { replicaKey, type ServerSnapshot } from './server-snapshot.ts'

export interface Scrape {
  server: ServerSnapshot
  /** The WebSocket listener's certificate notAfter (seconds); undefined without a TLS URL or when unreadable. */
  certificateNotAfter?: number
}

/**
 * One scrape shared by every collect() of one /metrics request (they all start in the same tick), and by
 * requests within `maxAgeMs` of its start; anything later asks the server again.
 */
export function sharedScrape(take: () => Promise<Scrape>, maxAgeMs = 1_000): () => Promise<Scrape> {
  let last: { at: number; scrape: Promise<Scrape> } | undefined
  return () => {
    if (!last || Date.now() - last.at >= maxAgeMs) last = { at: Date.now(), scrape: take() }
    return last.scrape
  }
}

type Up = Extract<ServerSnapshot, { up: true }>

/** Distinct peers among the routes (ROUTEZ lists every connection; without the list, its count). */
const routedPeers = (s: Up): number =>
  s.routez.routes ? new Set(s.routez.routes.map((r) => r.remote_id)).size : s.routez.num_routes

export function registerNatsMetrics(registry: Registry, scrape: () => Promise<Scrape>): void {
  const registers = [registry]
  /** A gauge whose figures come from an answered scrape; `labelNames` as the contract names them. */
  const fromServer = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    set: (server: Up, gauge: Gauge<L>) => void
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        const { server } = await scrape()
        this.reset()
        if (server.up) set(server, this)
      },
    })
  /**
   * A figure without labels. prom-client resets such a metric to 0, not to nothing, so a figure the
   * scrape did not get is removed instead.
   */
  const single = (name: string, help: string, value: (server: Up) => number | undefined) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const { server } = await scrape()
        const v = server.up ? value(server) : undefined
        if (v === undefined) this.remove()
        else this.set(v)
      },
    })

  new Gauge({
    name: 'nats_exporter_server_up',
    help: '1 when the datacenter nats-server answered this scrape (VARZ, JSZ, ROUTEZ, GATEWAYZ), else 0',
    registers,
    async collect() {
      this.set((await scrape()).server.up ? 1 : 0)
    },
  })
  fromServer('nats_server_info', 'The server version, as a label; always 1', ['version'], (s, g) =>
    g.set({ version: s.varz.version }, 1)
  )
  single('nats_server_connections', 'Client connections now', (s) => s.varz.connections)
  new Counter({
    name: 'nats_server_slow_consumers_total',
    help: 'Clients the server cut off or dropped messages for because they did not keep up (since it started)',
    registers,
    async collect() {
      const { server } = await scrape()
      this.remove()
      if (server.up) this.inc(server.varz.slow_consumers)
    },
  })
  // Peers, not connections: nats-server 2.10 pools several routes per peer (3 by default), so counting
  // connections would never fall below the cluster's size when one peer is lost.
  single('nats_server_routes', 'Cluster peers with a route up now (pooled routes count once)', routedPeers)
  single(
    'nats_server_cluster_size',
    'Servers the cluster knows, this one included, up or not (JetStream meta group; without JetStream: routed peers + 1)',
    (s) => s.jsz.meta_cluster?.cluster_size ?? s.varz.jetstream?.meta?.cluster_size ?? routedPeers(s) + 1
  )
  single(
    'nats_server_gateways',
    'Gateways (super-cluster links) up now; 0 without a super-cluster',
    (s) => Object.values(s.gatewayz.outbound_gateways ?? {}).filter((g) => g.connection !== undefined).length
  )
  single('nats_server_mem_bytes', 'Resident memory of nats-server', (s) => s.varz.mem)
  single('nats_server_cpu_percent', 'CPU of nats-server, percent of one core', (s) => s.varz.cpu)
  single(
    'nats_jetstream_enabled',
    '1 when JetStream runs on this server; 0 when disabled (e.g. after its store ran out of space)',
    (s) => (s.jsz.disabled ? 0 : 1)
  )
  single(
    'nats_jetstream_storage_used_bytes',
    'JetStream file store used on this server',
    (s) => s.jsz.storage
  )
  single(
    'nats_jetstream_storage_max_bytes',
    'JetStream file store this server may use (max_file_store)',
    (s) => s.jsz.config?.max_storage
  )

  // Streams are named per account; only the application account has JetStream, so `stream` is unique.
  const streams = (s: Up) =>
    (s.jsz.account_details ?? []).flatMap((a) =>
      (a.stream_detail ?? []).map((stream) => ({ account: a.name, stream }))
    )
  fromServer(
    'nats_jetstream_stream_messages',
    "Messages in this server's replica of the stream",
    ['stream'],
    (s, g) => {
      for (const { stream } of streams(s)) g.set({ stream: stream.name }, stream.state.messages)
    }
  )
  fromServer(
    'nats_jetstream_stream_bytes',
    "Bytes in this server's replica of the stream",
    ['stream'],
    (s, g) => {
      for (const { stream } of streams(s)) g.set({ stream: stream.name }, stream.state.bytes)
    }
  )
  fromServer(
    'nats_jetstream_stream_replica_lag',
    "Operations this server's replica is behind the stream leader (0 when current or when it leads)",
    ['stream'],
    (s, g) => {
      for (const { account, stream } of streams(s)) {
        const lag = s.replicas.get(replicaKey(account, stream.name))?.lag
        if (lag !== undefined) g.set({ stream: stream.name }, lag)
      }
    }
  )
  fromServer(
    'nats_jetstream_stream_replica_current',
    "1 when this server's replica of the stream is current (as its leader sees it), else 0",
    ['stream'],
    (s, g) => {
      for (const { account, stream } of streams(s)) {
        const state = s.replicas.get(replicaKey(account, stream.name))
        if (state) g.set({ stream: stream.name }, state.current ? 1 : 0)
      }
    }
  )
  /**
   * Consumers this server leads (or holds alone): a follower's JSZ keeps the consumer's delivered
   * position from its last snapshot, so its pending count is not to be trusted. Each consumer is thus
   * reported once in the cluster, by its leader's exporter; `max by (stream, consumer)` reads it.
   */
  const consumers = (s: Up) =>
    streams(s).flatMap(({ stream }) =>
      (stream.consumer_detail ?? [])
        .filter((c) => !c.cluster || c.cluster.leader === s.serverName)
        .map((c) => ({ stream: stream.name, c }))
    )
  fromServer(
    'nats_jetstream_consumer_pending',
    'Messages of the stream the consumer has not been delivered yet (reported by the consumer leader only)',
    ['stream', 'consumer'],
    (s, g) => {
      for (const { stream, c } of consumers(s)) g.set({ stream, consumer: c.name }, c.num_pending)
    }
  )
  fromServer(
    'nats_jetstream_consumer_ack_pending',
    'Messages delivered to the consumer and not acknowledged yet (reported by the consumer leader only)',
    ['stream', 'consumer'],
    (s, g) => {
      for (const { stream, c } of consumers(s)) g.set({ stream, consumer: c.name }, c.num_ack_pending)
    }
  )
  new Gauge({
    name: 'nats_websocket_certificate_expiry_timestamp_seconds',
    help: "notAfter of the NATS WebSocket listener's TLS certificate (absent without TLS, or when it cannot be read and trusted)",
    registers,
    async collect() {
      const { certificateNotAfter } = await scrape()
      if (certificateNotAfter === undefined) this.remove()
      else this.set(certificateNotAfter)
    },
  })
}
