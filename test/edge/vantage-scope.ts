/**
 * Test support: a set of health vantages of a test's own. The HEALTH binding it returns prefixes every
 * object name, so the Worker and the vantages themselves (which find their peers by their own name's
 * prefix) use `<prefix>vantage:<region>` objects, apart from the real ones every other test steers by.
 * Passed to the Worker as its env's HEALTH, it is also a memo of its own (steering/health-view.ts).
 */
import { env } from 'cloudflare:workers'
import type { ReachableDatacenter } from '#shared/catalogue.ts'
import type { Bindings } from '../../edge/env.ts'
import { vantagesOf, vantageStub, type Vantage } from '../../edge/vantages/vantage-set.ts'

type Namespace = Bindings['HEALTH']
type Stub = ReturnType<Namespace['getByName']>

/** The test catalogue (global-setup.ts): regions eu (fra first), us (nyc) and ap (syd). */
export const catalogue = JSON.parse(env.DATACENTERS) as ReachableDatacenter[]

export interface VantageScope {
  /** HEALTH for the Worker's env: every name prefixed; `stubFor` may stand in for a vantage's stub. */
  HEALTH: Namespace
  /** The scope's vantages of the test catalogue, by region. */
  vantages: Record<string, Vantage<ReachableDatacenter>>
  /** The stub of a region's vantage in the scope. */
  stub: (region: string) => Stub
}

export function vantageScope(prefix: string, stubFor?: (name: string) => Stub | undefined): VantageScope {
  const namespace = {
    getByName: (name: string, options?: DurableObjectNamespaceGetDurableObjectOptions) =>
      stubFor?.(name) ?? env.HEALTH.getByName(`${prefix}${name}`, options),
  } as unknown as Namespace
  const vantages = Object.fromEntries(vantagesOf(catalogue).map((v) => [v.id, v]))
  return {
    HEALTH: namespace,
    vantages,
    stub: (region) => {
      const vantage = vantages[region]
      if (!vantage) throw new Error(`no vantage ${region} in the test catalogue`)
      return vantageStub(env, vantage, prefix)
    },
  }
}
