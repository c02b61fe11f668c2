/**
 * Issue #15's release durability proof on the emulated world: 1,000 unique GitHub release deliveries,
 * sent through the edge by clients near Frankfurt and near New York (so published through datacenters in
 * `eu` and `us`), each redelivered until accepted as GitHub's redelivery would, while first the datacenter
 * leading the GITHUB stream is partitioned from every other for 60 s, then `us` is cut off for 60 s.
 * Every accepted delivery must end packaged and announced exactly once, and publishing must resume
 * within 10 s of losing the stream's leader, for clients outside the partitioned datacenter.
 *
 * One lane per fixture module, each sending its module's next version only once the previous one is
 * packaged: GitHub releases of one module come minutes apart, and a version processed after a newer one
 * is, rightly, a stale replay that is never announced.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { jetstreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/nats-core'
import { standIns } from '../../local/addresses.ts'
import {
  fixtureNames,
  postDelivery,
  registerRelease,
  releaseDelivery,
  releaseManifest,
  type Delivery,
  type FixtureName,
} from '../../local/stand-ins/github/index.ts'
import { embedTitles, recordedCalls } from '../../local/stand-ins/discord.ts'
import { homeRegion } from '#shared/regions.ts'
import worldCatalogue from '#shared/datacenters.world.json' with { type: 'json' }

export interface DurabilityWorld {
  edge: string
  operator: () => NatsConnection
  swarm: (...args: string[]) => Promise<unknown>
}

export interface Accepted {
  lane: FixtureName
  version: string
  title: string
  via: 'eu' | 'us'
  /** When the attempt that was answered 202 started, and when it was answered. */
  attemptAt: number
  acceptedAt: number
  /** When its module.json was first served to the lane's client (undefined: never, within the wait). */
  publishedAt?: number
}

export interface DurabilityFigures {
  accepted: Accepted[]
  /**
   * Deliveries accepted but whose module.json was not published within 180 s: the last answer seen
   * (status, x-datacenter, x-cache) and, after the run, what clients near Europe and New York get.
   */
  unpackaged: Array<{ release: string; manifestUrl: string; last: string; after?: string }>
  /** Per accepted delivery, how many times its announcement reached the release channel. */
  announcements: Map<string, number>
  /** Non-202 answers the lanes retried, by status ("error": no answer). */
  retried: Record<string, number>
  leader: string
  /** From the leader's partition to the first 202 of a redelivery probe sent after it. */
  resumedMs: number
  /** Redelivery probes sent (each a duplicate the stream drops). */
  probes: number
  schedule: Array<{ what: string; at: number }>
  ms: number
}

/** How long a lane waits for its delivery's module.json before it counts it unpackaged. */
const publishWaitMs = 600_000

const clients = {
  eu: { 'x-client-geo': '50.11,8.68' },
  us: { 'x-client-geo': '40.71,-74.01' },
} as const

/** A client's headers placing it at a datacenter of the home region other than `dc`. */
function nearHomeDatacenterOtherThan(dc: string): Record<string, string> {
  const home = homeRegion(worldCatalogue)
  const other = worldCatalogue.find((d) => d.region === home.id && d.id !== dc)
  if (!other) throw new Error(`the home region ${home.id} has no datacenter but ${dc}`)
  return { 'x-client-geo': `${other.lat},${other.lon}` }
}

/**
 * Sends `total` deliveries over the fixture modules' lanes (half near Europe, half near New York) while
 * the fault schedule runs, then waits for every announcement. Deliveries are paced so that they span the
 * whole schedule (`spanMs`).
 */
export async function deliverThroughFaults(
  world: DurabilityWorld,
  o: { total: number; spanMs: number; cutMs: number }
): Promise<DurabilityFigures> {
  const started = Date.now()
  // Right after an earlier partition healed, the meta group may still be settling ("JetStream system
  // temporarily unavailable"): wait for the stream's leader as an operator would.
  let leader: string | undefined
  let lastError = ''
  while (!leader && Date.now() - started < 60_000) {
    try {
      const jsm = await jetstreamManager(world.operator(), { checkAPI: false })
      leader = (await jsm.streams.info('GITHUB')).cluster?.leader
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error)
    }
    if (!leader) await sleep(1_000)
  }
  if (!leader) throw new Error(`the GITHUB stream has no leader within 60 s (last: ${lastError || 'none'})`)

  const paceFrom = Date.now()
  /**
   * Publishing, measured apart from packaging: every 250 ms the last delivery accepted near Europe is
   * delivered again. The stream drops it as a duplicate (same Nats-Msg-Id), but only its leader can say
   * so: a 202 means the GITHUB stream accepts publishes, and adds no release.
   * The probe stands near a datacenter of Europe other than the leader's: the relay carries the edge's
   * legs from a client's datacenter over the same links as the datacenters' own traffic, so clients
   * near a partitioned datacenter are cut off with it (as if their whole area were), until the heal.
   */
  const proberClient = nearHomeDatacenterOtherThan(leader)
  let lastAcceptedNearEurope: Pick<Delivery, 'headers' | 'body'> | undefined
  const probes: Array<{ startedAt: number; answeredAt: number; status: number }> = []
  let probing = true
  const prober = (async () => {
    while (probing) {
      const delivery = lastAcceptedNearEurope
      if (delivery) {
        const startedAt = Date.now()
        const res = await postDelivery(world.edge, delivery, {
          headers: proberClient,
          signal: AbortSignal.timeout(20_000),
        }).catch(() => null)
        if (res) await res.arrayBuffer()
        probes.push({ startedAt, answeredAt: Date.now(), status: res?.status ?? 0 })
      }
      await sleep(250)
    }
  })()
  const accepted: Accepted[] = []
  const unpackaged: DurabilityFigures['unpackaged'] = []
  const retried: Record<string, number> = {}
  const schedule: Array<{ what: string; at: number }> = []
  let tickets = 0
  const interval = o.spanMs / o.total
  const lanes = fixtureNames.map(async (lane, index) => {
    const via = index % 2 === 0 ? 'eu' : 'us'
    for (let n = 1; ; n++) {
      const ticket = tickets++
      if (ticket >= o.total) return
      const due = paceFrom + ticket * interval
      if (due > Date.now()) await sleep(due - Date.now())
      const version = `9.${index}.${n}`
      const delivery = await releaseDelivery(lane, { gitHubUrl: standIns.github.url, version })
      await registerRelease(standIns.github.url, delivery.spec)
      const manifest = releaseManifest(delivery.spec) as { id?: string; name?: string; title: string }
      const id = manifest.id ?? manifest.name
      const firstAttemptAt = Date.now()
      let mine: Accepted | undefined
      for (;;) {
        const attemptAt = Date.now()
        const res = await postDelivery(world.edge, delivery, {
          headers: clients[via],
          signal: AbortSignal.timeout(20_000),
        }).catch(() => null)
        if (res) await res.arrayBuffer()
        if (res?.status === 202) {
          if (via === 'eu') lastAcceptedNearEurope = delivery
          accepted.push(
            (mine = {
              lane,
              version,
              title: `${manifest.title} ${version}`,
              via,
              attemptAt,
              acceptedAt: Date.now(),
            })
          )
          break
        }
        const key = String(res?.status ?? 'error')
        retried[key] = (retried[key] ?? 0) + 1
        if (Date.now() - firstAttemptAt > 600_000) throw new Error(`${lane} ${version}: never accepted`)
        await sleep(1_000)
      }
      // The next version of this module only once this one is published. A delivery whose first
      // deliveries to the release service are lost in a partition waits out the consumer's backoff
      // (30 s, 60 s, 120 s, 240 s: runtime/jetstream-setup.ts) before it is packaged: the wait covers it.
      const manifestUrl = `${world.edge}/modules/${id}/${version}/module.json`
      const deadline = Date.now() + publishWaitMs
      let published = false
      let last = ''
      while (!published && Date.now() < deadline) {
        const res = await fetch(manifestUrl, {
          headers: clients[via],
          signal: AbortSignal.timeout(10_000),
        }).catch(() => null)
        if (res) await res.arrayBuffer()
        published = res?.status === 200
        last = `${res?.status ?? 'no answer'} ${res?.headers.get('x-datacenter') ?? ''} ${res?.headers.get('x-cache') ?? ''}`
        if (!published) await sleep(100)
      }
      if (published && mine) mine.publishedAt = Date.now()
      else unpackaged.push({ release: `${lane} ${version}`, manifestUrl, last })
    }
  })

  const faults = (async () => {
    const mark = (what: string) => schedule.push({ what, at: Date.now() })
    await sleep(10_000)
    // Marked once the command returns, which it does when the relay applies the cut: a probe started
    // before then may still be acknowledged by the old leader, and would say publishing never stopped.
    await world.swarm('partition', leader)
    mark(`partition ${leader}`)
    await sleep(o.cutMs)
    await world.swarm('heal')
    mark('heal')
    await sleep(10_000)
    await world.swarm('partition', 'us')
    mark('partition us')
    await sleep(o.cutMs)
    await world.swarm('heal')
    mark('heal')
  })()
  try {
    await Promise.all([...lanes, faults.finally(() => (probing = false)), prober])
  } finally {
    probing = false
    await world.swarm('heal')
  }

  const cutAt = schedule[0]!.at
  const resumed = probes.find((p) => p.startedAt >= cutAt && p.status === 202)

  // Every announcement, waited for (a redelivery after the notifier's ack wait may come late).
  const counted = async () => {
    const calls = (await recordedCalls(standIns.discord.url)).filter(
      (c) => c.status < 300 && standIns.discord.webhookUrl.includes(`/${c.webhookId}/${c.token}`)
    )
    const counts = new Map(accepted.map((a) => [a.title, 0]))
    for (const call of calls)
      for (const title of embedTitles(call)) if (counts.has(title)) counts.set(title, counts.get(title)! + 1)
    return counts
  }
  const deadline = Date.now() + 180_000
  let announcements = await counted()
  while ([...announcements.values()].some((n) => n === 0) && Date.now() < deadline) {
    await sleep(1_000)
    announcements = await counted()
  }
  // A duplicate would come after the first: look once more a little later.
  await sleep(5_000)
  announcements = await counted()
  for (const u of unpackaged) {
    const answers = await Promise.all(
      Object.entries(clients).map(async ([near, headers]) => {
        const res = await fetch(u.manifestUrl, { headers, signal: AbortSignal.timeout(10_000) }).catch(
          () => null
        )
        if (res) await res.arrayBuffer()
        return `near ${near}: ${res?.status ?? 'no answer'} ${res?.headers.get('x-datacenter') ?? ''} ${res?.headers.get('x-cache') ?? ''}`
      })
    )
    u.after = answers.join(', ')
  }
  return {
    accepted,
    unpackaged,
    announcements,
    retried,
    leader,
    resumedMs: resumed ? resumed.answeredAt - cutAt : Infinity,
    probes: probes.length,
    schedule,
    ms: Date.now() - started,
  }
}
