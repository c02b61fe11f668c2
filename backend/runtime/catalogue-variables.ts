/**
 * What a task's datacenter id tells it through the catalogue (issue #15). In production one backend
 * service spans the datacenters of several regions, and a Swarm task learns only its node's hostname
 * (the datacenter id, `DC`), never the node's labels. So every backend task mounts the production
 * catalogue (the Docker config of deploy/datacenters.production.json, `DATACENTERS_FILE`) and takes from
 * it, for its `DC`, what `npm start` hands each of its processes (local/platform-specs.ts): `REGION`,
 * `DC_NAME`, and the catalogue's JetStream layout (shared/regions.ts jetStreamLayout): `JETSTREAM_REPLICAS`,
 * `JETSTREAM_HOME_REGION`, `REGISTRY_MIRROR_REGIONS`. One derivation, in the image, for every service.
 *
 * Contract: `catalogueVariables` returns those variables for `dc`, or throws a CatalogueVariablesError
 * naming the culprit: a catalogue that does not validate (its field), a `DC` it lacks (and the ids it has),
 * or a variable set explicitly to something the catalogue contradicts (both values). A variable the
 * environment leaves unset is filled in; one set to the same value stays.
 */
import { parseCatalogue, type Catalogue } from '#shared/catalogue.ts'
import { jetStreamLayout } from '#shared/regions.ts'

export class CatalogueVariablesError extends Error {
  override name = 'CatalogueVariablesError'
}

/** The variables the catalogue decides for a task of `dc` (JETSTREAM_HOME_REGION absent: one region). */
export function derivedVariables(catalogue: Catalogue, dc: string): Record<string, string> | undefined {
  const self = catalogue.find((d) => d.id === dc)
  if (!self) return undefined
  const layout = jetStreamLayout(catalogue)
  return {
    REGION: self.region,
    DC_NAME: self.name,
    JETSTREAM_REPLICAS: String(layout.replicas),
    ...(layout.homeRegion ? { JETSTREAM_HOME_REGION: layout.homeRegion } : {}),
    REGISTRY_MIRROR_REGIONS: layout.mirrorRegions.join(','),
  }
}

/** Lists compare as sets (`us,ap` is `ap, us`), counts as numbers, everything else as trimmed text. */
const normalised = (name: string, value: string): string =>
  name.endsWith('_REGIONS')
    ? value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean)
        .sort()
        .join(',')
    : name === 'JETSTREAM_REPLICAS'
      ? String(Number(value))
      : value.trim()

/**
 * `env` with the catalogue's variables for its `DC` filled in (only those named in `known`: what the
 * service reads). `catalogueJson` is the catalogue's text, `source` says where it came from for messages.
 */
export function catalogueVariables(
  env: Readonly<Record<string, string | undefined>>,
  catalogueJson: string,
  source: string,
  known: ReadonlySet<string>
): Record<string, string | undefined> {
  let data: unknown
  try {
    data = JSON.parse(catalogueJson)
  } catch (error) {
    throw new CatalogueVariablesError(
      `${source}: not JSON (${error instanceof Error ? error.message : String(error)})`
    )
  }
  let catalogue: Catalogue
  try {
    catalogue = parseCatalogue(data, source)
  } catch (error) {
    // The catalogue's own message names the source and each bad field.
    throw new CatalogueVariablesError(error instanceof Error ? error.message : String(error))
  }
  const dc = env.DC
  // A missing or malformed DC is the schema's to report, with its own message.
  if (dc === undefined) return { ...env }
  const derived = derivedVariables(catalogue, dc)
  if (!derived)
    throw new CatalogueVariablesError(
      `DC=${JSON.stringify(dc)} is no datacenter of ${source} (${catalogue.map((d) => d.id).join(', ')})`
    )
  const result: Record<string, string | undefined> = { ...env }
  const problems: string[] = []
  for (const name of known) {
    const wanted = derived[name] ?? (name === 'JETSTREAM_HOME_REGION' ? '' : undefined)
    if (wanted === undefined) continue
    const explicit = env[name]
    if (explicit === undefined) {
      if (wanted !== '') result[name] = wanted
    } else if (name !== 'DC_NAME' && normalised(name, explicit) !== normalised(name, wanted)) {
      // DC_NAME is only what the landing page shows: an explicit one may say it differently.
      problems.push(
        `${name}=${JSON.stringify(explicit)} disagrees with ${source}, which gives ${dc} ${wanted === '' ? 'none' : JSON.stringify(wanted)}`
      )
    }
  }
  if (problems.length > 0) throw new CatalogueVariablesError(problems.join('; '))
  return result
}
