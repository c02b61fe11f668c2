/**
 * HealthRegistry: one health vantage (issue #16). There is one per catalogue region, a Durable Object
 * named `vantage:<region>` and asked for with that region's location hint (vantages/vantage-set.ts);
 * the class and its binding keep the name of the single registry they replace, so no migration.
 *
 * Each vantage
 * - probes every datacenter from its alarm (every PROBE_INTERVAL_MS; the cron trigger is a backstop
 *   that re-arms it), over the leg from its site when the emulated WAN is on (steering/legs.ts): a
 *   datacenter cut off from one region is seen down by that region's vantage only;
 * - takes the passive failure reports of the requests it serves (vantages/nearest-vantage.ts);
 * - keeps both in its own view, with today's hysteresis (health-state.ts), and the operator's drains
 *   stamped with the admin request's time;
 * - exchanges views with its peers after every round of probes and whenever a report changes its
 *   view: it offers its own and takes the peer's back in the answer. A peer that does not answer
 *   within the probe timeout is logged and skipped, never fatal; a drain it missed reaches it with the
 *   next exchange, as its verdict takes the latest drain of any view;
 * - answers snapshots: the majority verdict over the views (vantages/verdict.ts), each view and the
 *   votes.
 *
 * It knows itself from its name (`ctx.id.name`, stored too: alarms set before Cloudflare passed names
 * come without it). An object whose name is no current vantage (the single "global" registry of old,
 * or a region gone from the catalogue) deletes its alarm and storage at its next alarm instead of
 * probing forever. State is kept in storage so a restart loses neither drains nor counters nor views.
 */
import { DurableObject } from 'cloudflare:workers'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import type { Bindings } from '../env.ts'
import { edgeConfig, type EdgeConfig } from '../config.ts'
import {
  initialHealth,
  observe,
  stateOf,
  type DatacenterHealth,
  type DatacenterState,
  type StateChange,
} from './health-state.ts'
import { legEndpoints } from './legs.ts'
import { probe } from './probe.ts'
import { parseVantageName, vantagesOf, vantageStub, type Vantage } from '../vantages/vantage-set.ts'
import { staleAfterMs, verdictOf, type Verdict } from '../vantages/verdict.ts'
import { isNewer, vantageViewSchema, type HealthSnapshot, type VantageView } from '../vantages/views.ts'

export type { HealthSnapshot } from '../vantages/views.ts'

/** What this object stands for, when its name is a current vantage. */
interface Self {
  vantage: Vantage<ReachableDatacenter>
  /** The name prefix of its set: its peers' names share it. */
  prefix: string
  peers: Vantage<ReachableDatacenter>[]
}

/** The verdict on a datacenter as last settled, and since when it has said so. */
interface Settled {
  state: DatacenterState
  since: number
}

interface Meta {
  version: number
  settled: Record<string, Settled>
  changes: StateChange[]
}

const MAX_CHANGES = 50

const emptyView = (vantage: string): VantageView => ({ vantage, at: 0, version: 0, datacenters: {} })

export class HealthRegistry extends DurableObject<Bindings> {
  /** Its name as first known: `ctx.id.name`, or the stored copy when an alarm comes without it. */
  #name: string | undefined
  #view: VantageView = emptyView('')
  #peers: Record<string, VantageView> = {}
  #meta: Meta = { version: 0, settled: {}, changes: [] }

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env)
    void ctx.blockConcurrencyWhile(async () => {
      const stored = await ctx.storage.get<string | VantageView | Record<string, VantageView> | Meta>([
        'name',
        'view',
        'peers',
        'meta',
      ])
      this.#name = ctx.id.name ?? (stored.get('name') as string | undefined)
      this.#view = (stored.get('view') as VantageView | undefined) ?? this.#view
      this.#peers = (stored.get('peers') as Record<string, VantageView> | undefined) ?? {}
      this.#meta = (stored.get('meta') as Meta | undefined) ?? this.#meta
      if (this.#name !== undefined && stored.get('name') !== this.#name)
        await ctx.storage.put('name', this.#name)
    })
  }

  #config(): EdgeConfig {
    return edgeConfig(this.env)
  }

  #self(): Self | undefined {
    const parsed = parseVantageName(this.#name)
    if (!parsed) return undefined
    const vantages = vantagesOf(this.#config().datacenters)
    const vantage = vantages.find((v) => v.id === parsed.id)
    return vantage && { vantage, prefix: parsed.prefix, peers: vantages.filter((v) => v !== vantage) }
  }

  /** Its own view over the current catalogue: new datacenters start healthy, gone ones are dropped. */
  #ownView(self: Self, now: number): VantageView {
    const datacenters: Record<string, DatacenterHealth> = {}
    for (const dc of this.#config().datacenters)
      datacenters[dc.id] = this.#view.datacenters[dc.id] ?? initialHealth(now)
    return { ...this.#view, vantage: self.vantage.id, datacenters }
  }

  /** Every current vantage's view as known here, its own first; null for a peer never heard. */
  #views(self: Self, now: number): Record<string, VantageView | null> {
    const views: Record<string, VantageView | null> = { [self.vantage.id]: this.#ownView(self, now) }
    for (const peer of self.peers) views[peer.id] = this.#peers[peer.id] ?? null
    return views
  }

  /** The verdict over `views` (`#views`: pass them in when the caller needs them too). */
  #verdicts(self: Self, now: number, views = this.#views(self, now)): Record<string, Verdict> {
    const { datacenters, health } = this.#config()
    return verdictOf(
      datacenters.map((dc) => dc.id),
      Object.values(views),
      now,
      staleAfterMs(health.probeIntervalMs)
    )
  }

  /**
   * Applies observations to its own view, recording each state change of it. `at` moves only on
   * observations: a drain changes the view (its version) but is no evidence of health.
   */
  #change(
    self: Self,
    now: number,
    updates: ReadonlyArray<{ dc: string; change: (h: DatacenterHealth) => DatacenterHealth; reason: string }>,
    observed: boolean
  ): boolean {
    const view = this.#ownView(self, now)
    const changes: StateChange[] = []
    for (const { dc, change, reason } of updates) {
      const before = view.datacenters[dc]
      if (!before) continue
      const after = change(before)
      view.datacenters[dc] = after
      const [from, to] = [stateOf(before), stateOf(after)]
      if (from !== to) changes.push({ dc, vantage: self.vantage.id, at: now, from, to, reason })
    }
    this.#view = { ...view, at: observed ? now : view.at, version: view.version + 1 }
    this.#record(changes)
    return changes.length > 0
  }

  #record(changes: StateChange[]): void {
    if (changes.length > 0)
      this.#meta.changes = [...changes.reverse(), ...this.#meta.changes].slice(0, MAX_CHANGES)
  }

  /** Recomputes the verdict, records where it changed, and stores everything. */
  async #settle(self: Self, now: number): Promise<void> {
    const verdicts = this.#verdicts(self, now)
    const settled: Record<string, Settled> = {}
    const changes: StateChange[] = []
    for (const [dc, verdict] of Object.entries(verdicts)) {
      const state = stateOf(verdict)
      const before = this.#meta.settled[dc]
      if (before && before.state !== state)
        changes.push({
          dc,
          at: now,
          from: before.state,
          to: state,
          reason: describeVerdict(verdict, before.state),
        })
      settled[dc] = before?.state === state ? before : { state, since: now }
    }
    this.#meta = { ...this.#meta, version: this.#meta.version + 1, settled }
    this.#record(changes)
    await this.ctx.storage.put({ view: this.#view, peers: this.#peers, meta: this.#meta })
  }

  async #ensureAlarm(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + this.#config().health.probeIntervalMs)
  }

  #snapshot(self: Self | undefined, now: number): HealthSnapshot {
    const { version, changes } = this.#meta
    if (!self) return { version, at: now, vantage: '', datacenters: {}, votes: {}, views: {}, changes: [] }
    const views = this.#views(self, now)
    const own = views[self.vantage.id]!
    const datacenters: HealthSnapshot['datacenters'] = {}
    const votes: HealthSnapshot['votes'] = {}
    for (const [dc, verdict] of Object.entries(this.#verdicts(self, now, views))) {
      const settled = this.#meta.settled[dc]
      datacenters[dc] = {
        ...(own.datacenters[dc] ?? initialHealth(now)),
        up: verdict.up,
        degraded: verdict.degraded,
        drained: verdict.drained,
        drainedAt: verdict.drainedAt,
        since: settled?.state === stateOf(verdict) ? settled.since : now,
      }
      votes[dc] = verdict.votes
    }
    return {
      version,
      at: now,
      vantage: self.vantage.id,
      datacenters,
      votes,
      views,
      changes,
    }
  }

  async snapshot(): Promise<HealthSnapshot> {
    const self = this.#self()
    if (self) await this.#ensureAlarm()
    return this.#snapshot(self, Date.now())
  }

  /**
   * A peer's view, offered after its probes or a change: taken when it is newer than the copy held.
   * Answers this vantage's own view in exchange (null when this object is no current vantage).
   */
  async offer(view: VantageView): Promise<VantageView | null> {
    const self = this.#self()
    if (!self) return null
    await this.#ensureAlarm()
    const now = Date.now()
    if (this.#take(self, view)) await this.#settle(self, now)
    return this.#ownView(self, now)
  }

  /** Keeps `offered` as its vantage's view when it is valid, a current peer's, and newer than the copy. */
  #take(self: Self, offered: unknown): boolean {
    const parsed = vantageViewSchema.safeParse(offered)
    if (!parsed.success) {
      this.#log('error', 'vantage view refused', { error: parsed.error.message.slice(0, 500) })
      return false
    }
    const view = parsed.data
    if (!self.peers.some((peer) => peer.id === view.vantage) || !isNewer(view, this.#peers[view.vantage]))
      return false
    this.#peers = { ...this.#peers, [view.vantage]: view }
    return true
  }

  /** Offers its own view to every peer, within the probe timeout each, and takes theirs back. */
  async #share(self: Self): Promise<void> {
    const view = this.#ownView(self, Date.now())
    const timeoutMs = this.#config().health.probeTimeoutMs
    const answers = await Promise.allSettled(
      self.peers.map((peer) => within(timeoutMs, vantageStub(this.env, peer, self.prefix).offer(view)))
    )
    let taken = false
    answers.forEach((answer, i) => {
      if (answer.status === 'rejected')
        this.#log('error', 'vantage unreachable', { peer: self.peers[i]!.id, error: String(answer.reason) })
      else if (answer.value !== null && this.#take(self, answer.value)) taken = true
    })
    if (taken) await this.#settle(self, Date.now())
  }

  /** A failure seen on the request path (refused, reset, timeout, 5xx, no responders). */
  async report(dc: string, reason: string): Promise<void> {
    const self = this.#self()
    if (!self) return
    const now = Date.now()
    const policy = this.#config().health
    const changed = this.#change(
      self,
      now,
      [
        {
          dc,
          change: (h) => observe(h, { ok: false, at: now }, policy),
          reason: `request failed: ${reason}`,
        },
      ],
      true
    )
    await this.#settle(self, now)
    await this.#ensureAlarm()
    // A datacenter this region can no longer reach is news: its peers hear it now, not next round.
    if (changed) await this.#share(self)
  }

  /**
   * The operator's drain or undrain, stamped `at` (the admin request's time, the same for every
   * vantage): an older stamp than the one held changes nothing.
   */
  async setDrained(dc: string, drained: boolean, at = Date.now()): Promise<HealthSnapshot> {
    const self = this.#self()
    const now = Date.now()
    if (!self) return this.#snapshot(self, now)
    const reason = drained ? 'drained by operator' : 'undrained by operator'
    const apply = (h: DatacenterHealth) =>
      at >= (h.drainedAt ?? -Infinity) ? { ...h, drained, drainedAt: at } : h
    this.#change(self, now, [{ dc, change: apply, reason }], false)
    await this.#settle(self, now)
    return this.#snapshot(self, now)
  }

  /** Probes every datacenter once, now, each over the leg from this vantage's site. */
  async probeAll(): Promise<void> {
    const self = this.#self()
    if (!self) return
    const config = this.#config()
    const results = await Promise.all(
      config.datacenters.map(async (dc) => ({
        dc,
        result: await probe(
          dc,
          legEndpoints(config, self.vantage.site.id, dc).web,
          config.health.probeTimeoutMs,
          config.originProof
        ),
      }))
    )
    const now = Date.now()
    this.#change(
      self,
      now,
      results.map(({ dc, result }) => ({
        dc: dc.id,
        change: (h: DatacenterHealth) =>
          observe(
            h,
            { ok: result.ok, degraded: result.degraded, at: result.at, probe: result },
            config.health
          ),
        reason: result.ok ? 'probes succeed' : `probe failed: ${result.error}`,
      })),
      true
    )
    await this.#settle(self, now)
  }

  override async alarm(): Promise<void> {
    const self = this.#self()
    if (!self) return this.#retire()
    try {
      await this.probeAll()
      await this.#share(self)
    } finally {
      await this.ctx.storage.setAlarm(Date.now() + this.#config().health.probeIntervalMs)
    }
  }

  /** The cron backstop: probe now, share, and make sure the alarm is armed. */
  async tick(): Promise<void> {
    const self = this.#self()
    if (!self) return this.#retire()
    await this.probeAll()
    await this.#share(self)
    await this.#ensureAlarm()
  }

  /** No current vantage has this name: forget everything, and never wake again unless asked. */
  async #retire(): Promise<void> {
    this.#log('info', 'health registry retired: its name is no current vantage', {})
    await this.ctx.storage.deleteAlarm()
    await this.ctx.storage.deleteAll()
    this.#view = emptyView('')
    this.#peers = {}
    this.#meta = { version: 0, settled: {}, changes: [] }
  }

  #log(level: 'info' | 'error', msg: string, fields: Record<string, unknown>): void {
    const line = JSON.stringify({ level, msg, vantage: this.#name ?? null, ...fields })
    if (level === 'error') console.error(line)
    else console.log(line)
  }
}

/** "down: down in 2 of 3 views (1 up)", or the operator's word. */
function describeVerdict(verdict: Verdict, before: DatacenterState): string {
  if (verdict.drained) return 'drained by operator'
  if (before === 'drained') return 'undrained by operator'
  const { up, down, abstain } = verdict.votes
  const total = up + down + abstain
  const rest = [up && `${up} up`, abstain && `${abstain} abstaining`].filter(Boolean).join(', ')
  return `${verdict.up ? 'up' : 'down'}: down in ${down} of ${total} views${rest ? ` (${rest})` : ''}`
}

/** `promise`, or a rejection after `ms`. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    if (timer !== undefined) clearTimeout(timer)
  }
}
