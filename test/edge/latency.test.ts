/**
 * Steering on measured latency (edge/latency/): the estimates and the choice, pure, with simulated
 * latencies. Each turn is one request: choose, commit the choice, and record the first datacenter's
 * latency as the request path records a success (a failure records nothing).
 */
import { describe, expect, it } from 'vitest'
import {
  LatencyTable,
  STALE_AFTER_MS,
  WARM_SAMPLES,
  type LocationLatency,
} from '../../edge/latency/estimates.ts'
import { chooseDatacenters, type Choice, type SteeringMode } from '../../edge/latency/choose.ts'
import { distanceKm, steer, type Availability } from '../../edge/steering/nearest.ts'
import type { ClientLocation } from '../../edge/client-location.ts'
import type { Datacenter } from '#shared/catalogue.ts'
import world from '#shared/datacenters.world.json' with { type: 'json' }
import { cities, local, withNewYork } from './cities.ts'

const worldDcs: Datacenter[] = world
const dubai: ClientLocation = { lat: 25.2, lon: 55.27 }
/**
 * Round trips from Dubai: fra and sgp are Azure's P50 (the figures); ams and lon are set a
 * little above fra for the simulation; nyc and sfo are no candidates.
 */
const fromDubai: Record<string, number> = { fra: 119, ams: 131, lon: 136, sgp: 80, nyc: 190, sfo: 250 }
/** Time between two requests of a simulation. */
const STEP_MS = 100

const ids = (dcs: readonly Datacenter[]) => dcs.map((dc) => dc.id)

/** One edge location's requests over simulated time. */
class Simulation {
  readonly table = new LatencyTable()
  now = 1_000_000
  readonly catalogue: readonly Datacenter[]
  readonly client: ClientLocation
  readonly location: string

  constructor(catalogue: readonly Datacenter[], client: ClientLocation, location = 'dxb') {
    this.catalogue = catalogue
    this.client = client
    this.location = location
  }

  get state(): LocationLatency | undefined {
    return this.table.at(this.location)
  }

  /** The next choice, committed; `ms` of its first datacenter is recorded unless it is undefined (failed). */
  turn(
    ms: (dc: Datacenter) => number | undefined,
    availability: (dc: Datacenter) => Availability = () => 'available',
    mode: SteeringMode = 'measured'
  ): Choice<Datacenter> {
    const choice = chooseDatacenters(this.catalogue, this.client, availability, this.state, this.now, mode)
    this.table.chose(this.location, choice, this.now)
    const [first] = choice.ranked
    const taken = first && ms(first)
    if (first && taken !== undefined) this.table.record(this.location, first.id, taken, this.now + taken)
    this.now += STEP_MS
    return choice
  }

  turns(n: number, ...args: Parameters<Simulation['turn']>): Choice<Datacenter>[] {
    return Array.from({ length: n }, () => this.turn(...args))
  }
}

const table = (ms: Record<string, number>) => (dc: Datacenter) => {
  const value = ms[dc.id]
  if (value === undefined) throw new Error(`no latency for ${dc.id}`)
  return value
}
const firstOf = (choice: Choice<Datacenter>) => choice.ranked[0]?.id
const count = <T>(items: readonly T[], test: (item: T) => boolean) => items.filter(test).length

describe('the estimates', () => {
  it('leave out the first sample (a set-up), then average with weight 0.3 and count', () => {
    const t = new LatencyTable()
    t.record('dxb', 'sgp', 400, 0)
    expect(t.rows('dxb', 0)).toEqual([{ dc: 'sgp', ms: 400, samples: 0, at: 0, warm: false }])
    t.record('dxb', 'sgp', 100, 5)
    t.record('dxb', 'sgp', 50, 10)
    expect(t.rows('dxb', 10)).toEqual([{ dc: 'sgp', ms: 85, samples: 2, at: 10, warm: false }])
    t.record('dxb', 'sgp', 85, 20)
    expect(t.rows('dxb', 20)[0]).toMatchObject({ ms: 85, samples: 3, warm: true })
  })

  it('keep each edge location apart', () => {
    const t = new LatencyTable()
    for (let i = 0; i < 2; i++) {
      t.record('dxb', 'sgp', 80, i)
      t.record('jnb', 'sgp', 180, i)
    }
    expect(t.rows('dxb', 1)).toMatchObject([{ dc: 'sgp', ms: 80 }])
    expect(t.rows('jnb', 1)).toMatchObject([{ dc: 'sgp', ms: 180 }])
    expect(t.rows('fra', 1)).toEqual([])
  })

  it('count as cold once stale, and start afresh, set-up first', () => {
    const t = new LatencyTable()
    for (let i = 0; i <= WARM_SAMPLES; i++) t.record('dxb', 'sgp', 80, i)
    expect(t.rows('dxb', STALE_AFTER_MS)[0]?.warm).toBe(true)
    expect(t.rows('dxb', STALE_AFTER_MS + WARM_SAMPLES + 1)[0]?.warm).toBe(false)
    t.record('dxb', 'sgp', 400, 2 * STALE_AFTER_MS)
    t.record('dxb', 'sgp', 200, 2 * STALE_AFTER_MS)
    expect(t.rows('dxb', 2 * STALE_AFTER_MS)[0]).toMatchObject({ ms: 200, samples: 1 })
  })

  it('ignore a reading that is no duration', () => {
    const t = new LatencyTable()
    for (const ms of [-1, Number.NaN, Infinity]) t.record('dxb', 'sgp', ms, 0)
    expect(t.rows('dxb', 0)).toEqual([])
  })
})

describe('the choice: Dubai, whose nearest datacenter is not its fastest', () => {
  it('counts fra, ams, lon and sgp as candidates, and not nyc', () => {
    const sim = new Simulation(worldDcs, dubai)
    const explored = new Set(sim.turns(50, table(fromDubai)).map(firstOf))
    expect([...explored].sort()).toEqual(['ams', 'fra', 'lon', 'sgp'])
  })

  it('is warm within 50 requests, then sends at least 95 % of the next 500 to sgp', () => {
    const sim = new Simulation(worldDcs, dubai)
    const warmUp = sim.turns(50, table(fromDubai))
    expect(warmUp.some((c) => c.reason === 'measured')).toBe(true)
    const after = sim.turns(500, table(fromDubai))
    expect(count(after, (c) => firstOf(c) === 'sgp')).toBeGreaterThanOrEqual(475)
    // Every choice is measured or exploration; when sgp fails, fra (the next fastest) comes next.
    expect(new Set(after.map((c) => c.reason))).toEqual(new Set(['measured', 'exploration']))
    for (const c of after.filter((c) => c.reason === 'measured'))
      expect(ids(c.ranked).slice(0, 2)).toEqual(['sgp', 'fra'])
  })

  it('is not misled by the set-up of the first request to each datacenter (4 round trips)', () => {
    const sim = new Simulation(worldDcs, dubai)
    const connected = new Set<string>()
    const withSetUp = (dc: Datacenter) => {
      const rtt = table(fromDubai)(dc)
      if (connected.has(dc.id)) return rtt
      connected.add(dc.id)
      return 4 * rtt
    }
    sim.turns(50, withSetUp)
    const after = sim.turns(500, withSetUp)
    expect(count(after, (c) => firstOf(c) === 'sgp')).toBeGreaterThanOrEqual(475)
  })

  it('explores 2 % of requests once warm, and refreshes every candidate within 150 requests', () => {
    const sim = new Simulation(worldDcs, dubai)
    sim.turns(50, table(fromDubai))
    const after = sim.turns(5_000, table(fromDubai))
    const share = count(after, (c) => c.reason === 'exploration') / after.length
    expect(share).toBeGreaterThanOrEqual(0.015)
    expect(share).toBeLessThanOrEqual(0.025)
    // 50 turns per exploration, 3 candidates besides the leader.
    for (const dc of ['fra', 'ams', 'lon']) {
      const turns = after.flatMap((c, i) => (firstOf(c) === dc ? [i] : []))
      const gaps = turns.slice(1).map((t, i) => t - turns[i]!)
      expect(turns[0]).toBeLessThan(150)
      expect(Math.max(...gaps)).toBeLessThanOrEqual(150)
    }
    expect(new Set(after.map(firstOf))).toEqual(new Set(['sgp', 'fra', 'ams', 'lon']))
  })

  it('takes at most 4 candidates: Johannesburg never explores nyc, 1.48x as far as sgp', () => {
    const johannesburg = { lat: -26.2, lon: 28.05 }
    // fra, lon and sgp: Azure P50 (regions.md §3); ams and nyc: made up for the simulation.
    const ms = table({ sgp: 180, fra: 165, ams: 170, lon: 163, nyc: 230, sfo: 300 })
    const sim = new Simulation(worldDcs, johannesburg, 'jnb')
    const choices = sim.turns(300, ms)
    expect(new Set(choices.map(firstOf))).toEqual(new Set(['sgp', 'fra', 'ams', 'lon']))
    expect(sim.state?.leader).toBe('lon')
  })

  it('never explores a datacenter that is down or drained', () => {
    const out = (dc: Datacenter): Availability =>
      dc.id === 'sgp' ? 'down' : dc.id === 'ams' ? 'drained' : 'available'
    for (const warm of [false, true]) {
      const sim = new Simulation(worldDcs, dubai)
      if (warm) sim.turns(50, table(fromDubai))
      const choices = sim.turns(500, table(fromDubai), out)
      for (const c of choices) expect(ids(c.ranked)).not.toContain('sgp')
      for (const c of choices) expect(ids(c.ranked)).not.toContain('ams')
      // fra and lon are still measured: the rest of the candidates.
      expect(count(choices, (c) => c.reason === 'exploration')).toBeGreaterThan(0)
    }
  })

  it('goes back to sgp once it is up again', () => {
    const sim = new Simulation(worldDcs, dubai)
    sim.turns(50, table(fromDubai))
    sim.turns(100, table(fromDubai), (dc) => (dc.id === 'sgp' ? 'down' : 'available'))
    expect(sim.turn(table(fromDubai))).toMatchObject({ reason: 'measured', leader: 'sgp' })
  })

  it('steers by distance again when every estimate has gone stale, then warms up anew', () => {
    const sim = new Simulation(worldDcs, dubai)
    sim.turns(50, table(fromDubai))
    sim.now += STALE_AFTER_MS + 1
    const cold = sim.turns(2, table(fromDubai))
    expect(cold.map((c) => c.reason)).toEqual(['distance', 'exploration'])
    expect(firstOf(cold[0]!)).toBe('fra')
    const again = sim.turns(50, table(fromDubai))
    expect(firstOf(again.at(-1)!)).toBe('sgp')
  })

  it('refreshes an estimate about to go stale out of turn, one every 10 s at most', () => {
    const sim = new Simulation(worldDcs, dubai)
    sim.turns(50, table(fromDubai))
    // Quiet for 6 minutes, then one request a second: fra, ams and lon are past half their horizon.
    sim.now += 6 * 60_000
    const times: number[] = []
    const explored: string[] = []
    for (let i = 0; i < 40; i++) {
      const at = sim.now
      const choice = sim.turn(table(fromDubai))
      if (choice.refreshed) {
        times.push(at)
        explored.push(firstOf(choice)!)
      }
      sim.now += 1_000 - STEP_MS
    }
    expect(explored.sort()).toEqual(['ams', 'fra', 'lon'])
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(10_000)
    for (const row of sim.table.rows('dxb', sim.now)) expect(sim.now - row.at).toBeLessThan(60_000)
  })
})

describe('the choice without measurements: as steer() decides', () => {
  it.each(cities)('%s (%f, %f): in the order steer() gives, with and without New York', (_city, lat, lon) => {
    for (const catalogue of [local, withNewYork]) {
      const expected = ids(steer(catalogue, { lat, lon }).ranked)
      const sim = new Simulation(catalogue, { lat, lon })
      // Every request fails: nothing is recorded, so the location stays cold.
      const choices = sim.turns(20, () => undefined)
      expect(choices[0]).toMatchObject({ reason: 'distance', fallback: false })
      for (const c of choices) {
        if (c.reason === 'distance') expect(ids(c.ranked)).toEqual(expected)
        else {
          // An exploration: one other candidate first, the rest in steer()'s order.
          expect(c.reason).toBe('exploration')
          expect(firstOf(c)).not.toBe(expected[0])
          expect(ids(c.ranked.slice(1))).toEqual(expected.filter((id) => id !== firstOf(c)))
        }
      }
    }
  })

  it('ranks as steer() every time in distance mode, however warm the estimates', () => {
    const sim = new Simulation(worldDcs, dubai)
    sim.turns(50, table(fromDubai))
    const expected = ids(steer(worldDcs, dubai).ranked)
    for (const c of sim.turns(100, table(fromDubai), undefined, 'distance')) {
      expect(c.reason).toBe('distance')
      expect(ids(c.ranked)).toEqual(expected)
    }
  })

  it('keeps a country pin and the fallback as steer() ranks them', () => {
    const pinned = worldDcs.map((dc) => (dc.id === 'fra' ? { ...dc, countries: ['AE'] } : dc))
    const sim = new Simulation(pinned, { ...dubai, country: 'AE' })
    sim.turns(50, table(fromDubai))
    for (const c of sim.turns(100, table(fromDubai))) expect(c).toMatchObject({ reason: 'pinned' })
    expect(firstOf(sim.turn(table(fromDubai)))).toBe('fra')
    const down = sim.turn(table(fromDubai), () => 'down')
    expect(down).toMatchObject({ reason: 'fallback', fallback: true })
    expect(ids(down.ranked)).toEqual(ids(steer(pinned, { ...dubai, country: 'AE' }, () => 'down').ranked))
  })

  it('has no choice to make for a client next to a lone datacenter', () => {
    // New York: sfo is 4,129 km away, beyond 1,000 km more than nyc's 0.
    const sim = new Simulation(worldDcs, { lat: 40.71, lon: -74.01 }, 'nyc')
    const choices = sim.turns(100, (dc) => 5 + distanceKm({ lat: 40.71, lon: -74.01 }, dc) / 100)
    for (const c of choices) expect(c).toMatchObject({ reason: 'distance' })
    expect(new Set(choices.map(firstOf))).toEqual(new Set(['nyc']))
  })
})

describe('the choice when latency follows distance (5 ms + km / 100)', () => {
  it.each(cities)(
    '%s (%f, %f) stays on %s, and on %s with New York added',
    (_city, lat, lon, nearest, withNyc) => {
      for (const [catalogue, winner] of [
        [local, nearest],
        [withNewYork, withNyc],
      ] as const) {
        const sim = new Simulation(catalogue, { lat, lon })
        const ms = (dc: Datacenter) => 5 + distanceKm({ lat, lon }, dc) / 100
        sim.turns(50, ms)
        const after = sim.turns(500, ms)
        for (const c of after) if (c.reason !== 'exploration') expect(firstOf(c)).toBe(winner)
        expect(count(after, (c) => firstOf(c) === winner)).toBeGreaterThanOrEqual(475)
      }
    }
  )
})

describe('the choice between two close datacenters', () => {
  // Around Dubai with two candidates only: fra nearer, sgp further.
  const two = worldDcs.filter((dc) => dc.id === 'fra' || dc.id === 'sgp')
  const fixed = (fra: number, sgp: number) => (dc: Datacenter) => (dc.id === 'fra' ? fra : sgp)
  /** A 2 ms gap whose sign changes every 100 requests. */
  const swapping = () => {
    let i = 0
    return (dc: Datacenter) => {
      const fraFaster = Math.floor(i++ / 100) % 2 === 1
      return dc.id === 'fra' ? (fraFaster ? 98 : 100) : fraFaster ? 100 : 98
    }
  }
  /** Which of the two the estimates rank first now. */
  const lower = (sim: Simulation) => sim.table.rows(sim.location, sim.now).sort((x, y) => x.ms - y.ms)[0]?.dc

  it('does not flap at a 2 ms gap, and moves for a real one', () => {
    const sim = new Simulation(two, dubai)
    const ms = swapping()
    sim.turns(50, ms)
    const close: Choice<Datacenter>[] = []
    let swaps = 0
    for (let i = 0, was = lower(sim); i < 1_000; i++) {
      close.push(sim.turn(ms))
      const now = lower(sim)
      if (now !== was) swaps++
      was = now
    }
    // The estimates keep swapping: leading by the lowest would move the traffic each time.
    expect(swaps).toBeGreaterThanOrEqual(5)
    expect(new Set(close.filter((c) => c.reason === 'measured').map(firstOf))).toEqual(new Set(['fra']))
    // sgp becomes clearly faster: it leads, and keeps leading while it is faster by less than the margin.
    sim.turns(100, fixed(100, 60))
    expect(sim.state?.leader).toBe('sgp')
    const inBand = sim.turns(500, fixed(100, 98))
    expect(new Set(inBand.filter((c) => c.reason === 'measured').map(firstOf))).toEqual(new Set(['sgp']))
    // Once sgp is no faster than fra, the nearest takes its clients back.
    sim.turns(100, fixed(100, 102))
    expect(sim.state?.leader).toBe('fra')
  })

  it('counts latency as steer() counts distance: weight 2, half of it', () => {
    // 1,112 km and 1,223 km from the client; b is faster until a counts twice.
    const a: Datacenter = { id: 'a', name: 'A', region: 'x', lat: 0, lon: 10 }
    const b: Datacenter = { id: 'b', name: 'B', region: 'x', lat: 0, lon: -11 }
    const ms = table({ a: 100, b: 80 })
    const plain = new Simulation([a, b], { lat: 0, lon: 0 })
    plain.turns(50, ms)
    expect(plain.turn(ms)).toMatchObject({ reason: 'measured', leader: 'b' })
    const weighted = new Simulation([{ ...a, weight: 2 }, b], { lat: 0, lon: 0 })
    weighted.turns(50, ms)
    expect(weighted.turn(ms)).toMatchObject({ reason: 'measured', leader: 'a' })
  })
})

describe('the choice previewed (explore: false), as the status page reads it', () => {
  const preview = (sim: Simulation, availability: (dc: Datacenter) => Availability = () => 'available') =>
    chooseDatacenters(sim.catalogue, sim.client, availability, sim.state, sim.now, 'measured', {
      explore: false,
    })

  it('is the request path choice on every turn that does not explore, and never explores', () => {
    const sim = new Simulation(worldDcs, dubai)
    let explorations = 0
    for (let i = 0; i < 300; i++) {
      const seen = preview(sim)
      expect(seen.reason).not.toBe('exploration')
      expect(seen.refreshed).toBe(false)
      const taken = sim.turn(table(fromDubai))
      if (taken.reason === 'exploration') explorations++
      else expect({ ...seen, refreshed: taken.refreshed }).toEqual(taken)
    }
    // Cold, then warm: both kinds of turn were compared.
    expect(explorations).toBeGreaterThan(5)
    expect(preview(sim)).toMatchObject({ reason: 'measured', leader: 'sgp', weighed: 4 })
    expect(ids(preview(sim).ranked).slice(0, 4)).toEqual(['sgp', 'fra', 'ams', 'lon'])
  })

  it('leaves the turn, the leader and the refresh as they were', () => {
    const sim = new Simulation(worldDcs, dubai)
    sim.turns(50, table(fromDubai))
    sim.now += 6 * 60_000 // past half the horizon: a request would refresh out of turn
    const before = { ...sim.state! }
    for (let i = 0; i < 100; i++) preview(sim)
    expect({ ...sim.state! }).toEqual(before)
    expect(sim.turn(table(fromDubai)).refreshed).toBe(true)
  })

  it('says how many datacenters it weighed: none when pinned or by distance mode, one when alone', () => {
    const sim = new Simulation(worldDcs, dubai)
    expect(preview(sim)).toMatchObject({ reason: 'distance', weighed: 0 }) // nothing measured from here
    sim.turn(table(fromDubai))
    expect(preview(sim)).toMatchObject({ reason: 'distance', weighed: 4 })
    const distance = chooseDatacenters(worldDcs, dubai, () => 'available', sim.state, sim.now, 'distance')
    expect(distance).toMatchObject({ reason: 'distance', weighed: 0 })
    const newYork = new Simulation(worldDcs, { lat: 40.71, lon: -74.01 }, 'nyc')
    newYork.turn(() => 10)
    expect(preview(newYork)).toMatchObject({ reason: 'distance', weighed: 1 })
  })
})
