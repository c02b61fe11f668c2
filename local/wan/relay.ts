/**
 * The emulated WAN (issue #15): a TCP relay in front of every link between datacenters, in user space
 * (this machine's kernel has no netem). For every ordered pair (f, t) of datacenters, f == t included
 * (the edge's leg to a client's own datacenter), and every port given, it listens on wanAddress(f, t)
 * and forwards to the target datacenter's own address on the same port. Edge locations without a
 * datacenter (issue #16: Dubai, Johannesburg) are sources only: location k, numbered after the
 * datacenters, has a leg to every datacenter t at wanAddress(n + k, t), and none to itself. No
 * nats-server is configured with their addresses, so only the edge dials them.
 *
 * Contract:
 * - Every chunk is held for the pair's one-way time (RTT / 2, local/wan/rtt.ts) in each direction, in
 *   order: one timed queue per direction of a connection, woken for its head by one shared precise
 *   timer (precise-timer.ts), never a timer per chunk (measured with 200,000 chunks: a setTimeout each
 *   cost 0.6-1 µs of CPU a chunk, the queue 0.1-0.2 µs). The upstream connection is opened one one-way time after the client's, so a server's
 *   greeting (NATS INFO) reaches the client one RTT after it connected. TCP's handshake is not
 *   emulated: the client's connect() completes at once, so a new connection's first exchange costs one
 *   RTT less than on a real WAN.
 * - Backpressure: a queue holding more than `holdLimitBytes` pauses reading from its source (logged
 *   once per connection and direction) and resumes at half of it; a destination whose write buffer is
 *   full is waited for ('drain'). Nothing is ever dropped, and no queue grows without bound.
 * - Closing: allowHalfOpen on both sockets; a FIN travels as the last item of its queue (after the
 *   bytes before it), a reset (a socket closed by an error) as a destroy of the other side, also in
 *   order (an RST). Both sockets of a connection are gone when the relay forgets it.
 * - Partitions (setCuts): on a cut pair nothing is delivered, in either direction, but everything is
 *   read and held (up to the hold limit, then the senders' TCP windows fill), as TCP would retransmit
 *   after a heal. New connections are accepted and never forwarded: a black hole, so NATS notices a
 *   dead route or gateway by its own ping timeout (`ping_interval` × `ping_max`), as on a real cut
 *   link, not by a refused connection. On a heal the held bytes flow, new connections are opened
 *   upstream, and connections their endpoint closed meanwhile close through.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { loopbackAddress } from '../addresses.ts'
import { wanAddress } from './address.ts'
import { CutSet } from './cuts.ts'
import type { RttTable } from './rtt.ts'
import { nowMs, PRECISION_MS, PreciseTimer } from './precise-timer.ts'

type LogLine = (fields: Record<string, unknown>, message: string) => void
export interface RelayLog {
  info: LogLine
  warn: LogLine
  error: LogLine
}

export interface RelayOptions {
  /** Datacenter ids in catalogue order (index i binds 127.0.(i+1).1). */
  datacenters: readonly string[]
  /** Edge locations without a datacenter, in the order the edge is given them (local/wan/legs.ts). */
  edgeLocations?: readonly string[]
  rtt: RttTable
  /** The target ports that cross datacenters (defaultWanPorts in production use). */
  ports: readonly number[]
  /** Bytes one direction of one connection may hold before reading from its source pauses. */
  holdLimitBytes?: number
  /** Structured lines (a pino logger in serve.ts). */
  log: RelayLog
  /**
   * The NATS gateway port and each datacenter's region: a gateway connection on a pair (f, t) whose
   * CONNECT names a gateway (the dialer's region) other than f's is refused. nats-server 2.9 hands the
   * gateway URLs a server was configured with (its own pairs' relay addresses) to the clusters it meets,
   * which add them to theirs; without this, fra could reach sgp through sfo's pair, which a partition of
   * Europe does not cut. Only gateways carry their region in CONNECT; routes stay inside a region.
   */
  gateways?: { port: number; regionOf: Readonly<Record<string, string>> }
}

/**
 * 2 MiB a direction, which acts as a connection's window: at most this much in flight, so a connection
 * carries at most about 17 MB/s over nyc-sgp (118 ms one way; measured 13-15 MB/s) and is not slowed on
 * the short links (40-200 MB/s measured on 12 ms). A cut link holds at most this per connection and
 * direction.
 */
export const DEFAULT_HOLD_LIMIT_BYTES = 2 * 1024 * 1024

interface Pair {
  from: string
  to: string
  port: number
  oneWayMs: number
}

type Item =
  { kind: 'data'; due: number; chunk: Buffer } | { kind: 'end' | 'destroy' | 'connect'; due: number }

/** One direction of one connection: a FIFO of items, each delivered at its due time. */
class DelayLine {
  /** Delivered slots are set to undefined, so their chunks can be collected before the array is compacted. */
  readonly #items: (Item | undefined)[] = []
  #head = 0
  readonly #timer: PreciseTimer
  readonly #pump = () => this.pump()
  #blocked = false
  #pausedSource: Socket | undefined
  #capLogged = false
  /** Data bytes read and not yet handed to the destination. */
  bytes = 0
  dest: Socket | undefined

  readonly name: string
  readonly delayMs: number
  readonly holdLimit: number
  readonly #held: () => boolean
  readonly #onDeliver: (item: Item) => void
  readonly #onCap: (line: DelayLine) => void

  constructor(opts: {
    name: string
    delayMs: number
    /** True while the link is cut: nothing is delivered. */
    held: () => boolean
    holdLimit: number
    timer: PreciseTimer
    /** Delivers the items that are not data (connect, end, destroy). */
    onDeliver: (item: Item) => void
    onCap: (line: DelayLine) => void
  }) {
    this.name = opts.name
    this.delayMs = opts.delayMs
    this.holdLimit = opts.holdLimit
    this.#timer = opts.timer
    this.#held = opts.held
    this.#onDeliver = opts.onDeliver
    this.#onCap = opts.onCap
  }

  get empty(): boolean {
    return this.#head >= this.#items.length
  }

  /** Reads `source` into this line: its bytes, then its FIN (end) or its reset (destroy). */
  readFrom(source: Socket): void {
    let ended = false
    source.on('data', (chunk: Buffer) => {
      this.push({ kind: 'data', due: nowMs() + this.delayMs, chunk })
      this.bytes += chunk.length
      if (this.bytes > this.holdLimit && !this.#pausedSource) {
        source.pause()
        this.#pausedSource = source
        if (!this.#capLogged) {
          this.#capLogged = true
          this.#onCap(this)
        }
      }
    })
    source.on('end', () => {
      ended = true
      this.push({ kind: 'end', due: nowMs() + this.delayMs })
    })
    source.on('close', () => {
      if (!ended) this.push({ kind: 'destroy', due: nowMs() + this.delayMs })
    })
    // 'close' follows every error and carries it on as a destroy; the error itself is no news here.
    source.on('error', () => {})
  }

  push(item: Item): void {
    const wasEmpty = this.empty
    this.#items.push(item)
    if (wasEmpty) this.pump()
  }

  /** Delivers every item that is due, unless the link is cut or the destination is full. */
  pump(): void {
    this.#timer.cancel(this.#pump)
    if (this.#blocked || this.#held()) return
    const now = nowMs()
    for (let item = this.#items[this.#head]; item; item = this.#items[this.#head]) {
      if (item.due > now + PRECISION_MS) {
        this.#timer.schedule(this.#pump, item.due)
        return
      }
      this.#items[this.#head++] = undefined
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items.splice(0, this.#head)
        this.#head = 0
      }
      if (item.kind === 'data') {
        this.bytes -= item.chunk.length
        const dest = this.dest
        if (dest && !dest.destroyed && !dest.write(item.chunk)) {
          this.#blocked = true
          dest.once('drain', () => {
            this.#blocked = false
            this.pump()
          })
        }
        if (this.#pausedSource && this.bytes <= this.holdLimit / 2) {
          this.#pausedSource.resume()
          this.#pausedSource = undefined
        }
        if (this.#blocked) return
      } else this.#onDeliver(item)
    }
  }

  /** Forgets everything still queued (its destination is gone). */
  clear(): void {
    this.#timer.cancel(this.#pump)
    this.#items.length = 0
    this.#head = 0
    this.bytes = 0
  }
}

/** One client connection on one pair: client → upstream (`up`) and back (`down`). */
class Connection {
  readonly up: DelayLine
  readonly down: DelayLine
  upstream: Socket | undefined

  readonly relay: WanRelay
  readonly pair: Pair
  readonly client: Socket

  constructor(relay: WanRelay, pair: Pair, client: Socket) {
    this.relay = relay
    this.pair = pair
    this.client = client
    const line = (direction: 'up' | 'down') =>
      new DelayLine({
        name: `${pair.from}->${pair.to}:${pair.port} ${direction}`,
        delayMs: pair.oneWayMs,
        held: () => relay.isCut(pair.from, pair.to),
        holdLimit: relay.holdLimit,
        timer: relay.timer,
        onDeliver: (item) => this.#deliver(item, direction),
        onCap: (l) => relay.logCap(pair, l, relay.isCut(pair.from, pair.to)),
      })
    this.up = line('up')
    this.down = line('down')
    client.setNoDelay(true)
    // The SYN's one-way trip: the upstream is opened one one-way time after the client connected.
    this.up.push({ kind: 'connect', due: nowMs() + pair.oneWayMs })
    const region = relay.gatewayRegion(pair)
    if (region !== undefined) this.#admitOnlyGateway(region)
    this.up.readFrom(client)
    client.once('close', () => this.#maybeDone())
  }

  /**
   * Reads the dialer's first line (its CONNECT, sent after the server's INFO) alongside the delay line:
   * a gateway of another region than this pair's source is reset before its CONNECT is delivered.
   */
  #admitOnlyGateway(region: string): void {
    let head = ''
    const check = (chunk: Buffer) => {
      head += chunk.toString('latin1')
      const end = head.indexOf('\r\n')
      if (end < 0 && head.length < 64 * 1024) return
      this.client.off('data', check)
      const gateway = /^CONNECT\s+(\{.*\})/.exec(head.slice(0, end < 0 ? undefined : end))?.[1]
      let name: unknown
      try {
        name = gateway ? (JSON.parse(gateway) as { gateway?: unknown }).gateway : undefined
      } catch {
        name = undefined
      }
      if (name === region) return
      this.relay.logRefused(this.pair, region, name)
      this.client.resetAndDestroy()
      // After the delay line has taken this chunk too (its listener runs next): none of it is delivered.
      queueMicrotask(() => {
        this.up.clear()
        this.upstream?.resetAndDestroy()
      })
    }
    this.client.on('data', check)
  }

  #deliver(item: Item, direction: 'up' | 'down'): void {
    const dest = direction === 'up' ? this.upstream : this.client
    switch (item.kind) {
      case 'connect':
        this.#openUpstream()
        break
      case 'end':
        if (dest && !dest.destroyed) dest.end()
        break
      case 'destroy':
        // A reset for a reset: destroy() alone would close with a FIN, which reads as a clean end.
        if (dest && !dest.destroyed) dest.resetAndDestroy()
        else this.#maybeDone()
        break
      case 'data':
        break
    }
  }

  #openUpstream(): void {
    // A client that closed before its connection got through, and sent nothing: nothing to open.
    if (this.client.destroyed && this.up.bytes === 0) {
      this.up.clear()
      this.#maybeDone()
      return
    }
    const upstream = connect({
      host: loopbackAddress(this.relay.indexOf(this.pair.to)),
      port: this.pair.port,
      allowHalfOpen: true,
      noDelay: true,
    })
    this.upstream = upstream
    this.up.dest = upstream
    this.down.dest = this.client
    this.down.readFrom(upstream)
    upstream.once('close', () => this.#maybeDone())
  }

  #maybeDone(): void {
    const upstreamGone = !this.upstream || this.upstream.destroyed
    if (!this.client.destroyed && !upstreamGone) return
    // A socket that is gone takes no more bytes: what was queued for it goes.
    if (this.client.destroyed) this.down.clear()
    if (this.upstream?.destroyed) this.up.clear()
    if (this.client.destroyed && (this.upstream ? this.upstream.destroyed : this.up.empty))
      this.relay.forget(this)
  }

  /** After a heal: deliver what was held. */
  pump(): void {
    this.up.pump()
    this.down.pump()
  }

  destroy(): void {
    this.up.clear()
    this.down.clear()
    this.client.destroy()
    this.upstream?.destroy()
  }
}

export class WanRelay {
  readonly holdLimit: number
  readonly timer = new PreciseTimer()
  readonly #opts: RelayOptions
  readonly #servers: Server[] = []
  readonly #connections = new Set<Connection>()
  readonly #index: Map<string, number>
  #cuts = new CutSet([])

  private constructor(opts: RelayOptions) {
    this.#opts = opts
    this.holdLimit = opts.holdLimitBytes ?? DEFAULT_HOLD_LIMIT_BYTES
    this.#index = new Map(opts.datacenters.map((id, i) => [id, i]))
  }

  /**
   * Checks the RTT table covers every pair and every edge location's leg, then listens on every
   * (from, to, port): from a datacenter or an edge location, to a datacenter.
   */
  static async start(opts: RelayOptions): Promise<WanRelay> {
    const edgeLocations = opts.edgeLocations ?? []
    const twice = edgeLocations.find((id, i) => edgeLocations.indexOf(id) !== i)
    if (twice !== undefined) throw new Error(`edge location ${twice} is given twice`)
    opts.rtt.assertCovers(opts.datacenters, edgeLocations)
    const relay = new WanRelay(opts)
    try {
      await Promise.all(
        [...opts.datacenters, ...edgeLocations].flatMap((from, f) =>
          opts.datacenters.flatMap((to, t) =>
            opts.ports.map((port) =>
              relay.#listen({ from, to, port, oneWayMs: opts.rtt.oneWayMs(from, to) }, wanAddress(f, t))
            )
          )
        )
      )
    } catch (error) {
      await relay.close()
      throw error
    }
    return relay
  }

  #listen(pair: Pair, host: string): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      this.#connections.add(new Connection(this, pair, client))
    })
    this.#servers.push(server)
    return new Promise((resolve, reject) => {
      server.once('error', (error) =>
        reject(
          new Error(
            `cannot listen on ${host}:${pair.port} (WAN ${pair.from} -> ${pair.to}): ${error.message}`
          )
        )
      )
      server.listen(pair.port, host, () => resolve())
    })
  }

  /** The region a gateway dialling through `pair` must name, or undefined when the pair's port is no gateway. */
  gatewayRegion(pair: Pair): string | undefined {
    const g = this.#opts.gateways
    return g && pair.port === g.port && pair.from !== pair.to ? g.regionOf[pair.from] : undefined
  }

  /** Once per refused connection: a gateway that took another pair's relay address. */
  logRefused(pair: Pair, region: string, named: unknown): void {
    this.#opts.log.info(
      {
        event: 'wan_gateway_refused',
        from: pair.from,
        to: pair.to,
        port: pair.port,
        expected: region,
        named: typeof named === 'string' ? named.slice(0, 64) : null,
      },
      `${pair.from}->${pair.to}:${pair.port}: refused a gateway of ${typeof named === 'string' ? `"${named.slice(0, 64)}"` : 'no region'}, only ${region}'s servers dial through this pair`
    )
  }

  indexOf(id: string): number {
    const index = this.#index.get(id)
    if (index === undefined) throw new Error(`unknown datacenter ${id}`)
    return index
  }

  isCut(from: string, to: string): boolean {
    return this.#cuts.isCut(from, to)
  }

  get cuts(): CutSet {
    return this.#cuts
  }

  /** Applies a new set of cuts: links no longer cut deliver what they held at once. */
  setCuts(cuts: CutSet): void {
    this.#cuts = cuts
    for (const connection of this.#connections) connection.pump()
  }

  /** Open connections and the bytes they hold, per link `from->to`. */
  links(): Record<string, { connections: number; heldBytes: number }> {
    const out: Record<string, { connections: number; heldBytes: number }> = {}
    for (const c of this.#connections) {
      const key = `${c.pair.from}->${c.pair.to}`
      const link = (out[key] ??= { connections: 0, heldBytes: 0 })
      link.connections++
      link.heldBytes += c.up.bytes + c.down.bytes
    }
    return out
  }

  /** Once per connection and direction: flow control at work (info), or a cut link filling up (warn). */
  logCap(pair: Pair, line: DelayLine, cut: boolean): void {
    this.#opts.log[cut ? 'warn' : 'info'](
      {
        event: 'wan_hold_limit',
        link: line.name,
        from: pair.from,
        to: pair.to,
        port: pair.port,
        holdLimitBytes: this.holdLimit,
        cut,
      },
      `${line.name}: holding over ${this.holdLimit} bytes${cut ? ' (link cut)' : ''}; reading from the sender paused until half of it is delivered`
    )
  }

  forget(connection: Connection): void {
    this.#connections.delete(connection)
  }

  async close(): Promise<void> {
    for (const c of this.#connections) c.destroy()
    this.#connections.clear()
    await this.timer.close()
    await Promise.all(
      this.#servers.map(
        (s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))
      )
    )
  }
}
