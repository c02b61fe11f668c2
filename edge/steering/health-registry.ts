/**
 * HealthRegistry: the health truth, one Durable Object (named "global"). It probes every
 * datacenter from its alarm (every PROBE_INTERVAL_MS; the cron trigger is a backstop that re-arms
 * it), takes passive failure reports from the request path, and holds drain state. State is kept
 * in Durable Object storage so a restart of the object loses neither drains nor counters.
 */
import { DurableObject } from 'cloudflare:workers'
import type { Bindings } from '../env.ts'
import { edgeConfig, type EdgeConfig } from '../config.ts'
import { initialHealth, observe, stateOf, type DatacenterHealth, type StateChange } from './health-state.ts'
import { probe } from './probe.ts'

export interface HealthSnapshot {
  /** Increases with every change: isolates keep the newest snapshot they have seen. */
  version: number
  at: number
  datacenters: Record<string, DatacenterHealth>
  /** Most recent first. */
  changes: StateChange[]
}

interface Stored {
  version: number
  datacenters: Record<string, DatacenterHealth>
  changes: StateChange[]
}

const MAX_CHANGES = 50

export class HealthRegistry extends DurableObject<Bindings> {
  #state: Stored = { version: 0, datacenters: {}, changes: [] }

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    void ctx.blockConcurrencyWhile(async () => {
      const stored = await ctx.storage.get<Stored>('state')
      if (stored) this.#state = { ...stored, version: stored.version ?? 0 }
    })
  }

  #config(): EdgeConfig {
    return edgeConfig(this.env)
  }

  /** Every catalogue datacenter, new ones starting healthy; entries no longer in the catalogue dropped. */
  #current(now: number): Record<string, DatacenterHealth> {
    const datacenters: Record<string, DatacenterHealth> = {}
    for (const dc of this.#config().datacenters)
      datacenters[dc.id] = this.#state.datacenters[dc.id] ?? initialHealth(now)
    return datacenters
  }

  async #update(dc: string, now: number, change: (h: DatacenterHealth) => DatacenterHealth, reason: string) {
    const datacenters = this.#current(now)
    const before = datacenters[dc]
    if (!before) return
    const after = change(before)
    datacenters[dc] = after
    const [from, to] = [stateOf(before), stateOf(after)]
    const changes =
      from === to
        ? this.#state.changes
        : [{ dc, at: now, from, to, reason }, ...this.#state.changes].slice(0, MAX_CHANGES)
    this.#state = { version: this.#state.version + 1, datacenters, changes }
    await this.ctx.storage.put('state', this.#state)
  }

  async #ensureAlarm(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + this.#config().health.probeIntervalMs)
  }

  async snapshot(): Promise<HealthSnapshot> {
    await this.#ensureAlarm()
    const now = Date.now()
    return {
      version: this.#state.version,
      at: now,
      datacenters: this.#current(now),
      changes: this.#state.changes,
    }
  }

  /** A failure seen on the request path (refused, reset, timeout, 5xx, no responders). */
  async report(dc: string, reason: string): Promise<void> {
    const now = Date.now()
    await this.#update(
      dc,
      now,
      (h) => observe(h, { ok: false, at: now }, this.#config().health),
      `request failed: ${reason}`
    )
    await this.#ensureAlarm()
  }

  async setDrained(dc: string, drained: boolean): Promise<HealthSnapshot> {
    const now = Date.now()
    await this.#update(
      dc,
      now,
      (h) => ({ ...h, drained }),
      drained ? 'drained by operator' : 'undrained by operator'
    )
    return this.snapshot()
  }

  /** Probes every datacenter once, now. */
  async probeAll(): Promise<void> {
    const config = this.#config()
    const results = await Promise.all(
      config.datacenters.map(async (dc) => ({
        dc,
        result: await probe(dc, dc.endpoints.web, config.health.probeTimeoutMs, config.originProof),
      }))
    )
    for (const { dc, result } of results) {
      await this.#update(
        dc.id,
        result.at,
        (h) =>
          observe(
            h,
            { ok: result.ok, degraded: result.degraded, at: result.at, probe: result },
            config.health
          ),
        result.ok ? 'probes succeed' : `probe failed: ${result.error}`
      )
    }
  }

  override async alarm(): Promise<void> {
    try {
      await this.probeAll()
    } finally {
      await this.ctx.storage.setAlarm(Date.now() + this.#config().health.probeIntervalMs)
    }
  }

  /** The cron backstop: probe now and make sure the alarm is armed. */
  async tick(): Promise<void> {
    await this.probeAll()
    await this.#ensureAlarm()
  }
}
