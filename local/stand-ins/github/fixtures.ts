/**
 * The fixture catalogue the GitHub stand-in serves (test/fixtures/): the modules it can release,
 * each a real module.json and the repository it comes from, GitHub's documented test secret, and the
 * octokit example delivery every payload is derived from.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'

const fixturesDir = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures')
export const readFixture = (path: string) => readFileSync(join(fixturesDir, path), 'utf8')

/** GitHub's documented test secret; the signed delivery fixtures use it too. */
export const GITHUB_TEST_SECRET = "It's a Secret to Everybody"

/**
 * The modules the stand-in can release: a real manifest each, and the repository it comes from.
 * Repository ids are synthetic except Hello-World's (the octokit example).
 */
export const fixtureModules = {
  'hello-world': {
    manifest: 'foundry/forgevtt-test/test-module.module.json',
    patch: { id: 'hello-world', title: 'Hello World' },
    owner: 'Codertocat',
    repo: 'Hello-World',
    repositoryId: 186853002,
  },
  'test-module': {
    manifest: 'foundry/forgevtt-test/test-module.module.json',
    patch: {},
    owner: 'ForgeVTT',
    repo: 'test-foundry-modules',
    repositoryId: 900_000_001,
  },
  'ddb-importer': {
    manifest: 'foundry/ddb-importer/module.7.4.1.release.json',
    patch: {},
    owner: 'MrPrimate',
    repo: 'ddb-importer',
    repositoryId: 900_000_002,
  },
  'item-piles': {
    manifest: 'foundry/item-piles/module.json',
    patch: {},
    owner: 'fantasycalendar',
    repo: 'FoundryVTT-ItemPiles',
    repositoryId: 900_000_003,
  },
  'lib-wrapper': {
    manifest: 'foundry/lib-wrapper/module.json',
    patch: {},
    owner: 'ruipin',
    repo: 'fvtt-lib-wrapper',
    repositoryId: 900_000_004,
  },
  'vtta-core': {
    manifest: 'foundry/vtta/vtta-core.2.0.3.module.json',
    patch: {},
    owner: 'VTTAssets',
    repo: 'vtta-core',
    repositoryId: 900_000_005,
  },
} as const satisfies Record<
  string,
  { manifest: string; patch: Record<string, unknown>; owner: string; repo: string; repositoryId: number }
>
export type FixtureName = keyof typeof fixtureModules
export const fixtureNames = Object.keys(fixtureModules) as FixtureName[]

/** The parts of the octokit example delivery the payloads build on; the rest is carried as is. */
const exampleDeliverySchema = z.looseObject({
  release: z.looseObject({ author: z.looseObject({}), created_at: z.string(), published_at: z.string() }),
  repository: z.looseObject({ owner: z.looseObject({}) }),
})
export type ExampleDelivery = z.infer<typeof exampleDeliverySchema>

let example: ExampleDelivery | undefined
/** A fresh copy of the octokit example delivery the payloads are derived from. */
export const exampleDelivery = (): ExampleDelivery =>
  structuredClone(
    (example ??= exampleDeliverySchema.parse(
      JSON.parse(readFixture('github/deliveries/release-published/body.json'))
    ))
  )
