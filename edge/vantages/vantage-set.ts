/**
 * The health vantages (issue #16): one per catalogue region, each a HealthRegistry Durable Object
 * that probes every datacenter from that region. A vantage stands at its region's first datacenter
 * (its site: with the emulated WAN, it probes over that site's legs) and is asked for with the
 * location hint of that site, so Cloudflare starts it there.
 *
 * An object is named `vantage:<region>`, optionally after a prefix that its peers share: a prefixed
 * set is a separate set of vantages (the tests use one each). A name of another form (the single
 * registry of old, "global") is no vantage: such an object retires itself.
 */
import type { Datacenter, LocationHint } from '#shared/catalogue.ts'
import { regionsOf } from '#shared/regions.ts'
import type { Bindings } from '../env.ts'
import { hintOf } from '../placement/location-hints.ts'

export interface Vantage<D extends Datacenter = Datacenter> {
  /** Its region's id. */
  id: string
  /** Where it stands: its region's first datacenter, in catalogue order. */
  site: D
  /** Where its object is asked to start: its site's. */
  hint: LocationHint
}

const byCatalogue = new WeakMap<readonly Datacenter[], Vantage[]>()

/** One vantage per region of `catalogue`, in the order regions first appear (memoised per catalogue). */
export function vantagesOf<D extends Datacenter>(catalogue: readonly D[]): Vantage<D>[] {
  let vantages = byCatalogue.get(catalogue) as Vantage<D>[] | undefined
  if (!vantages) {
    vantages = regionsOf(catalogue).flatMap(({ id, datacenters: [site] }) =>
      site ? [{ id, site, hint: hintOf(site) }] : []
    )
    byCatalogue.set(catalogue, vantages)
  }
  return vantages
}

const NAME = /^(.*)vantage:([a-z][a-z0-9-]{1,15})$/

/** The object name of vantage `id` in the set of `prefix` (none in production). */
export const vantageName = (id: string, prefix = ''): string => `${prefix}vantage:${id}`

/** The vantage id and set prefix an object name stands for, or undefined when it names no vantage. */
export function parseVantageName(name: string | undefined): { id: string; prefix: string } | undefined {
  const match = name === undefined ? null : NAME.exec(name)
  return match ? { prefix: match[1]!, id: match[2]! } : undefined
}

/** The stub of `vantage`'s object, asked for with its hint (honoured when the object is first made). */
export function vantageStub(
  env: Pick<Bindings, 'HEALTH'>,
  vantage: Pick<Vantage, 'id' | 'hint'>,
  prefix = ''
): ReturnType<Bindings['HEALTH']['getByName']> {
  return env.HEALTH.getByName(vantageName(vantage.id, prefix), { locationHint: vantage.hint })
}
