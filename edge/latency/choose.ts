/**
 * The choice of datacenters for one request (issue #16), pure: steer()'s ranking, reordered at its
 * head by what this isolate measured from the request's edge location (latency/estimates.ts).
 *
 * - steer() decides as before what may be chosen at all (health, drains, weight 0) and the fallback.
 *   A fallback or a country pin is kept as steer() ranks it; so is everything in `distance` mode.
 * - Candidates: the available datacenters within 1.5x the nearest one's distance, or within 1,000 km
 *   more than it (for a client next to a datacenter, where 1.5x of nothing is nothing), at most 4,
 *   as steer() scores them (weights included). Networks stray from great circles by tens of percent,
 *   rarely by more; Dubai's candidates are fra (4,836 km), ams, lon and sgp (5,837 km).
 * - Warm (every candidate has WARM_SAMPLES fresh samples): candidates by measured ms / weight, lowest
 *   first. The nearest stays first unless another is better by max(5 ms, 5 %); one that took its
 *   place stays until a third is better than it by as much, or until it is no faster than the nearest:
 *   noise around a small gap does not move a location's traffic back and forth, and a datacenter back
 *   from a drain or an outage gets its nearby clients back.
 * - Cold: distance order, as steer() ranks (a cold start behaves as without measurements). Every
 *   2nd turn the coldest other candidate goes first, so Dubai's four are warm within ~24 requests.
 * - Exploration once warm: every 50th turn (2 %) the least recently measured candidate other than the
 *   leader goes first; so does one whose estimate is past half its staleness horizon (at most one such
 *   refresh per location per 10 s), so a quiet location keeps its estimates warm.
 * - Candidates come from available datacenters only, so nothing down or drained is explored. After
 *   the head, the order stays a failover order: the other candidates, then steer()'s rest.
 * - `explore: false` previews the choice (the status page): what a request gets when its turn is
 *   not an exploration's. Exploration is the table's upkeep, not where the location is served.
 */
import type { Datacenter } from '#shared/catalogue.ts'
import type { ClientLocation } from '../client-location.ts'
import { clientOrigin, distanceKm, steer, type Availability, type Steering } from '../steering/nearest.ts'
import {
  freshSamples,
  STALE_AFTER_MS,
  WARM_SAMPLES,
  type ChoiceMade,
  type Estimate,
  type LocationLatency,
} from './estimates.ts'

export const steeringModes = ['measured', 'distance'] as const
/** `distance` is steering as before measurements: the operator's switch back (STEERING_MODE). */
export type SteeringMode = (typeof steeringModes)[number]

/** Why the first datacenter is first (the `x-steering` header). */
export type SteeringReason = 'pinned' | 'measured' | 'distance' | 'exploration' | 'fallback'

export interface Choice<D extends Datacenter> extends Steering<D>, ChoiceMade {
  reason: SteeringReason
  /**
   * How many datacenters at the head of `ranked` the choice weighed by measured latency (its
   * candidates, in its order); 0 when it weighed none: pinned, fallback, distance mode, no location.
   */
  weighed: number
}

const CANDIDATE_RATIO = 1.5
const CANDIDATE_SLACK_KM = 1_000
const MAX_CANDIDATES = 4
/** While cold, every 2nd turn explores. */
const COLD_EXPLORE_EVERY = 2
/** Once warm, every 50th turn explores: 2 % of requests. */
const WARM_EXPLORE_EVERY = 50
/** A challenger must beat the leader by max(5 ms, 5 %) to take its place. */
const SWITCH_MIN_MS = 5
const SWITCH_MIN_SHARE = 0.05
/** An estimate this old is refreshed out of turn, before it goes stale... */
const REFRESH_AFTER_MS = STALE_AFTER_MS / 2
/** ...at most once per this long per location (requests in flight would all explore otherwise). */
const REFRESH_SPACING_MS = 10_000

const isPinned = (dc: Datacenter, client: ClientLocation) =>
  client.country !== undefined && dc.countries?.includes(client.country) === true

/** The datacenters from `ranked` (available, nearest first) that measurement may put first. */
function candidatesOf<D extends Datacenter>(ranked: readonly D[], origin: { lat: number; lon: number }): D[] {
  const candidates: D[] = []
  let limit = Infinity
  for (const dc of ranked) {
    if (candidates.length === MAX_CANDIDATES) break
    // steer()'s own score, so candidates are a prefix of its ranking.
    const score = distanceKm(origin, dc) / (dc.weight || 1)
    if (score > limit) break
    if (candidates.length === 0) limit = Math.max(score * CANDIDATE_RATIO, score + CANDIDATE_SLACK_KM)
    candidates.push(dc)
  }
  return candidates
}

/** Earlier sample first; never measured before all. */
const measuredAt = (estimate: Readonly<Estimate> | undefined) => estimate?.at ?? -Infinity

/** `head` first, then `order` without it. */
const withHead = <D>(head: D, order: readonly D[]): D[] => [head, ...order.filter((dc) => dc !== head)]

export function chooseDatacenters<D extends Datacenter>(
  catalogue: readonly D[],
  client: ClientLocation,
  availability: (dc: D) => Availability,
  /** The request's edge location's state; undefined before its first choice. */
  latency: LocationLatency | undefined,
  now: number,
  mode: SteeringMode = 'measured',
  /** false: leave exploration out and change nothing a request's turn would (a preview). */
  { explore = true }: { explore?: boolean } = {}
): Choice<D> {
  const { ranked, fallback } = steer(catalogue, client, availability)
  const leader = latency?.leader
  const keep = (
    reason: SteeringReason,
    order = ranked,
    weighed = 0,
    made: ChoiceMade = { leader, refreshed: false }
  ) => ({ ranked: order, fallback, reason, weighed, ...made })
  if (fallback) return keep('fallback')
  const [nearest] = ranked
  if (nearest && isPinned(nearest, client)) return keep('pinned')
  const origin = clientOrigin(client)
  if (mode === 'distance' || !latency || !origin) return keep('distance')
  const candidates = candidatesOf(ranked, origin)
  const weighed = candidates.length
  if (weighed < 2) return keep('distance', ranked, weighed)
  const estimates = candidates.map((dc) => latency.estimates.get(dc.id))

  if (estimates.some((e) => freshSamples(e, now) < WARM_SAMPLES)) {
    if (!explore || latency.turn % COLD_EXPLORE_EVERY !== COLD_EXPLORE_EVERY - 1)
      return keep('distance', ranked, weighed)
    // The nearest is chosen on every other turn anyway: explore the coldest of the others.
    let coldest: number | undefined
    for (let i = 1; i < candidates.length; i++) {
      const samples = freshSamples(estimates[i], now)
      if (samples >= WARM_SAMPLES) continue
      if (coldest === undefined) coldest = i
      else {
        const least = freshSamples(estimates[coldest], now)
        if (
          samples < least ||
          (samples === least && measuredAt(estimates[i]) < measuredAt(estimates[coldest]))
        )
          coldest = i
      }
    }
    if (coldest === undefined) return keep('distance', ranked, weighed)
    return keep('exploration', withHead(candidates[coldest]!, ranked), weighed)
  }

  // Warm: each candidate's expected latency, counted as steer() counts distance (weight 2: half).
  const scores = candidates.map((dc, i) => estimates[i]!.ms / (dc.weight || 1))
  const held = candidates.findIndex((dc) => dc.id === leader)
  let best = 0
  for (let i = 1; i < scores.length; i++) if (scores[i]! < scores[best]!) best = i
  // The nearest leads unless another is clearly faster than it, and takes its clients back as soon as
  // the leader that replaced it is no faster at all: where latency follows distance a client is served
  // where distance serves it, and a datacenter back from a drain or an outage gets its clients back.
  // Between the two, the leader holds (a band of the margin's width), so noise does not flap.
  const incumbent = held <= 0 || scores[held]! >= scores[0]! ? 0 : held
  const clearlyBetter = (i: number, than: number) =>
    scores[i]! < scores[than]! - Math.max(SWITCH_MIN_MS, SWITCH_MIN_SHARE * scores[than]!)
  const first = clearlyBetter(best, incumbent) ? best : incumbent
  const byLatency = candidates
    .map((dc, i) => ({ dc, score: i === first ? -Infinity : scores[i]! }))
    .sort((a, b) => a.score - b.score)
    .map((s) => s.dc)
  const order = [...byLatency, ...ranked.slice(candidates.length)]
  const chosen = candidates[first]!.id
  if (!explore) return keep('measured', order, weighed, { leader: chosen, refreshed: false })

  let stalest: number | undefined
  for (let i = 0; i < candidates.length; i++)
    if (i !== first && (stalest === undefined || measuredAt(estimates[i]) < measuredAt(estimates[stalest])))
      stalest = i
  const onTurn = latency.turn % WARM_EXPLORE_EVERY === WARM_EXPLORE_EVERY - 1
  const refresh =
    stalest !== undefined &&
    now - measuredAt(estimates[stalest]) > REFRESH_AFTER_MS &&
    now - latency.refreshedAt >= REFRESH_SPACING_MS
  if (stalest !== undefined && (onTurn || refresh))
    return keep('exploration', withHead(candidates[stalest]!, order), weighed, {
      leader: chosen,
      refreshed: refresh,
    })
  return keep('measured', order, weighed, { leader: chosen, refreshed: false })
}
