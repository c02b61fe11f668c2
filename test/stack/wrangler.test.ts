/**
 * wrangler.toml and the edge's generated bindings.
 *
 * - edge/env.generated.d.ts is exactly what `wrangler types` generates from wrangler.toml today.
 * - The production environment (`npx wrangler deploy --env production`): read with wrangler's own
 *   config reader (the same normalisation and validation `wrangler deploy` applies), checked for the
 *   invariants below, and built with `wrangler deploy --dry-run`, which needs no account or network.
 * - The edge's secrets (edge/env.ts `edgeSecrets`) are never vars, and every variable the edge reads
 *   (edge/config.ts) is a wrangler var, a secret or a local-only var.
 * - The local-only vars (edge/env.ts `localOnlyVars`: DATACENTER_LEGS, the emulated WAN's legs, and
 *   EDGE_LOCATIONS, its edge locations without a datacenter) are in no table: only `WAN=1 npm start`
 *   passes them, and production must never reach a datacenter by one.
 *
 * As in stack.test.ts the invariants are a checker returning problems ("<where>: <invariant>: <detail>"),
 * and the negative tests break a copy of the real configuration to show that each problem is reported.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { z } from 'zod'
import { unstable_readConfig } from 'wrangler'
import { parseReachableCatalogue } from '#shared/catalogue.ts'
import { createUser } from '@nats-io/nkeys'

const root = fileURLToPath(new URL('../../', import.meta.url))
const readRepoFile = (path: string): string => readFileSync(root + path, 'utf8')
const configPath = join(root, 'wrangler.toml')
const catalogueFile = 'deploy/datacenters.production.json'
const generatedFile = join(root, 'edge/env.generated.d.ts')
const ENV = 'production'

/** The parts of a resolved Worker configuration these checks read; everything else passes through. */
const workerConfigSchema = z.looseObject({
  name: z.string().optional(),
  workers_dev: z.boolean().optional(),
  routes: z
    .array(z.union([z.string(), z.looseObject({ pattern: z.string(), zone_name: z.string().optional() })]))
    .optional(),
  durable_objects: z.looseObject({
    bindings: z.array(z.looseObject({ name: z.string(), class_name: z.string() })),
  }),
  migrations: z.array(
    z.looseObject({
      new_sqlite_classes: z.array(z.string()).optional(),
      new_classes: z.array(z.string()).optional(),
    })
  ),
  triggers: z.looseObject({ crons: z.array(z.string()).optional() }),
  vars: z.record(z.string(), z.unknown()),
  ratelimits: z.array(z.unknown()),
  definedEnvironments: z.array(z.string()).optional(),
})
type WorkerConfig = z.infer<typeof workerConfigSchema>

/** One environment of wrangler.toml as `wrangler deploy [--env <env>]` sees it (inheritance applied). */
const readWorkerConfig = (env?: string, config = configPath): WorkerConfig =>
  // A JSON copy: wrangler's objects have null prototypes, and a test's mutation must break its copy only.
  workerConfigSchema.parse(
    JSON.parse(JSON.stringify(unstable_readConfig({ config, env }, { hideWarnings: true })))
  )

const copyOf = (config: WorkerConfig): WorkerConfig => workerConfigSchema.parse(structuredClone(config))

const local = readWorkerConfig()
const production = readWorkerConfig(ENV)
/** Every environment's vars, as the table they are written in. */
const varTables = (configs: { local: WorkerConfig; environments: Record<string, WorkerConfig> }) => [
  { table: '[vars]', vars: configs.local.vars },
  ...Object.entries(configs.environments).map(([name, env]) => ({
    table: `[env.${name}.vars]`,
    vars: env.vars,
  })),
]
const environments = Object.fromEntries(
  (local.definedEnvironments ?? []).map((name) => [name, readWorkerConfig(name)])
)
const wranglerText = readRepoFile('wrangler.toml')
const catalogue: unknown = JSON.parse(readRepoFile(catalogueFile))

/**
 * The edge's own lists, imported by URL at run time: edge/ is type-checked with the Worker's types
 * (tsc -p edge), not with this project's.
 */
const edgeModule = async (path: string): Promise<unknown> =>
  import(new URL(`../../edge/${path}`, import.meta.url).href)
const { edgeConfig, configVarNames } = z
  .object({
    edgeConfig: z.custom<(vars: Record<string, unknown>) => unknown>((v) => typeof v === 'function'),
    configVarNames: z.array(z.string()),
  })
  .parse(await edgeModule('config.ts'))
const { edgeSecrets, localOnlyVars } = z
  .object({ edgeSecrets: z.array(z.string()), localOnlyVars: z.array(z.string()) })
  .parse(await edgeModule('env.ts'))

const placeholderSeed = new TextDecoder().decode(createUser().getSeed())

// ---------------------------------------------------------------------------------------------------------
// The invariant checker

function productionProblems(
  env: WorkerConfig,
  tables: Array<{ table: string; vars: Record<string, unknown> }>,
  productionCatalogue: unknown
): string[] {
  const problems: string[] = []
  const fail = (invariant: string, detail: string) => problems.push(`env.${ENV}: ${invariant}: ${detail}`)

  if (!env.name) fail('name', 'the production Worker needs a name')
  if (env.workers_dev !== false) fail('workers_dev', 'must be false (production answers on its routes only)')
  const routes = env.routes ?? []
  for (const pattern of ['vtta.io/*', 'www.vtta.io/*']) {
    const route = routes.find((r) => (typeof r === 'string' ? r : r.pattern) === pattern)
    if (!route) fail('routes', `${pattern} is missing`)
    else if (typeof route === 'string' || route.zone_name !== 'vtta.io')
      fail('routes', `${pattern} needs zone_name = "vtta.io"`)
  }

  // Durable Object bindings are not inherited by environments: each top-level one must be repeated.
  const bindings = env.durable_objects.bindings
  for (const wanted of local.durable_objects.bindings) {
    if (!bindings.some((b) => b.name === wanted.name && b.class_name === wanted.class_name))
      fail(
        'durable_objects',
        `${wanted.name} (${wanted.class_name}) is missing: bindings are not inherited by environments`
      )
  }
  const migrated = new Set(
    env.migrations.flatMap((m) => [...(m.new_sqlite_classes ?? []), ...(m.new_classes ?? [])])
  )
  for (const binding of bindings) {
    if (!migrated.has(binding.class_name)) fail('migrations', `no migration creates ${binding.class_name}`)
  }
  if (!env.triggers.crons?.length) fail('triggers', 'crons is empty: the health probes have no backstop')

  const vars = env.vars
  let datacenters: unknown
  try {
    datacenters = JSON.parse(String(vars.DATACENTERS))
  } catch {
    fail('vars', 'DATACENTERS is not a JSON string')
  }
  if (datacenters !== undefined) {
    try {
      parseReachableCatalogue(datacenters, 'DATACENTERS')
    } catch (error) {
      fail('vars', error instanceof Error ? error.message : String(error))
    }
    if (JSON.stringify(datacenters) !== JSON.stringify(productionCatalogue))
      fail('vars', `DATACENTERS differs from ${catalogueFile}`)
  }
  if (vars.ALLOW_GEO_OVERRIDE !== 'false')
    fail('vars', 'ALLOW_GEO_OVERRIDE must be "false" (clients must not choose their location)')
  try {
    // Required secrets come from `wrangler secret put`, never vars: stand-ins here.
    edgeConfig({
      ORIGIN_CLIENT_ID: 'stand-in.access',
      ORIGIN_CLIENT_SECRET: 's'.repeat(43),
      NATS_EDGE_SEED: placeholderSeed,
      ...vars,
    })
  } catch (error) {
    fail('vars', `the edge refuses them: ${error instanceof Error ? error.message : String(error)}`)
  }

  // Secrets: never in any vars table of the file (a var is visible to anyone who can read the dashboard
  // or this repository).
  for (const { table, vars: tableVars } of tables) {
    for (const secret of edgeSecrets) {
      if (secret in tableVars) problems.push(`${table}: secrets: ${secret} is a secret, never a var`)
    }
    // The emulated WAN's legs: a datacenter reached at a loopback relay, or anywhere but its own endpoints.
    for (const name of localOnlyVars) {
      if (name in tableVars) problems.push(`${table}: local-only: ${name} is set by \`WAN=1 npm start\` only`)
    }
  }
  return problems
}

// ---------------------------------------------------------------------------------------------------------
// The generated bindings

/** `wrangler types <out> -c <config>` with the flags edge/env.generated.d.ts was generated with. */
function wranglerTypes(out: string, config = configPath): Promise<void> {
  const wrangler = join(root, 'node_modules/wrangler/bin/wrangler.js')
  const args = [wrangler, 'types', out, '--include-runtime=false', '--strict-vars=false', '-c', config]
  const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' }
  return new Promise((done, failed) => {
    execFile(process.execPath, args, { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) =>
      error ? failed(new Error(`wrangler types failed: ${stdout}${stderr}`)) : done()
    )
  })
}

/**
 * A generated file's content, comparable wherever it was written: without its header line (which
 * names the output path and hashes the content with it), and with each `import("<relative path>")`
 * made absolute.
 */
function comparable(path: string): string {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('// Generated by Wrangler'))
    .join('\n')
    .replace(/import\("([^"]+)"\)/g, (_m, spec: string) => `import("${resolve(dirname(path), spec)}")`)
}

describe('edge/env.generated.d.ts', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vtta-edge-types-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const regenerate = 'npx wrangler types edge/env.generated.d.ts --include-runtime=false --strict-vars=false'

  it('is what `wrangler types` generates from wrangler.toml now', async () => {
    const fresh = join(dir, 'env.generated.d.ts')
    await wranglerTypes(fresh)
    expect(comparable(generatedFile), `stale: run \`${regenerate}\``).toBe(comparable(fresh))
  }, 70_000)

  it('no longer is once wrangler.toml binds something new (so the check above is meaningful)', async () => {
    const config = join(dir, 'wrangler.toml')
    writeFileSync(
      config,
      wranglerText
        .replace(/^main = "(.*)"$/m, (_m, main: string) => `main = ${JSON.stringify(join(root, main))}`)
        .replace(/^\[vars\]\n/m, '[vars]\nCACHE_VERSION = "2"\n')
    )
    const fresh = join(dir, 'changed.d.ts')
    await wranglerTypes(fresh, config)
    expect(comparable(fresh)).toContain('CACHE_VERSION')
    expect(comparable(fresh)).not.toBe(comparable(generatedFile))
  }, 70_000)
})

// ---------------------------------------------------------------------------------------------------------
// The real file

describe('wrangler.toml [env.production]', () => {
  it('has no problems at all', () => {
    expect(productionProblems(production, varTables({ local, environments }), catalogue)).toEqual([])
  })

  it('knows the edge secrets it must never store', () => {
    expect([...edgeSecrets].sort()).toEqual([
      'ADMIN_TOKEN',
      'GITHUB_WEBHOOK_SECRET',
      'IMAGE_SIGNING_KEY',
      'NATS_EDGE_SEED',
      'ORIGIN_CLIENT_ID',
      'ORIGIN_CLIENT_SECRET',
      'PURGE_TOKEN',
    ])
  })

  it('binds every variable the edge reads, as a var or as a secret, and no secret the edge does not read', () => {
    const provided = new Set([
      ...Object.keys(local.vars),
      ...Object.keys(production.vars),
      ...edgeSecrets,
      ...localOnlyVars,
    ])
    expect(configVarNames.filter((name) => !provided.has(name))).toEqual([])
    expect(edgeSecrets.filter((name) => !configVarNames.includes(name))).toEqual([])
  })

  it('serves the production catalogue of deploy/datacenters.production.json, validated as the edge reads it', () => {
    const datacenters = parseReachableCatalogue(
      JSON.parse(String(production.vars.DATACENTERS)),
      'DATACENTERS'
    )
    expect(datacenters).toEqual(catalogue)
    expect(datacenters.map((dc) => dc.id)).toEqual(['fra1', 'ams3', 'lon1', 'nyc3', 'sfo3', 'sgp1'])
    expect(production.vars.ALLOW_GEO_OVERRIDE).toBe('false')
  })

  it('sets no local-only var: production reaches every datacenter at its own endpoints', () => {
    expect(localOnlyVars).toEqual(['DATACENTER_LEGS', 'EDGE_LOCATIONS'])
    for (const name of localOnlyVars) {
      expect(production.vars).not.toHaveProperty(name)
      expect(local.vars).not.toHaveProperty(name)
    }
  })

  it('limits image misses per client IP and minute (the edge answers Retry-After: 60)', () => {
    expect(production.ratelimits).toEqual([
      { name: 'IMAGE_RATE_LIMITER', namespace_id: '1101', simple: { limit: 120, period: 60 } },
    ])
  })

  it('leaves the local configuration (top level) as it was', () => {
    expect(local.name).toBe('vtta-edge')
    const datacenters = parseReachableCatalogue(JSON.parse(String(local.vars.DATACENTERS)), 'DATACENTERS')
    expect(datacenters.map((dc) => dc.id)).toEqual(['fra', 'ams', 'lon'])
    expect(local.routes ?? []).toEqual([])
  })
})

/**
 * `wrangler deploy --dry-run --outdir <dir> --env production [-c <config>]`: bundles and validates offline
 * (no account, no API token, no metrics). Output without colours, so warnings can be matched.
 */
function dryRun(outdir: string, config = configPath): Promise<{ code: number; output: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_LOG_PATH: join(outdir, 'logs'),
    NO_COLOR: '1',
    FORCE_COLOR: '0',
  }
  delete env.CLOUDFLARE_API_TOKEN
  const wrangler = join(root, 'node_modules/wrangler/bin/wrangler.js')
  const args = [wrangler, 'deploy', '--dry-run', '--outdir', join(outdir, 'dist'), '--env', ENV, '-c', config]
  return new Promise((done) => {
    execFile(process.execPath, args, { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      done({ code, output: `${stdout}${stderr}`.replace(/\x1b\[[0-9;]*m/g, '') })
    })
  })
}

const warnings = (output: string): string[] => output.split('\n').filter((l) => /\[(WARNING|ERROR)\]/.test(l))

describe('wrangler deploy --dry-run --env production', () => {
  let outdir: string
  let result: { code: number; output: string }

  beforeAll(async () => {
    outdir = mkdtempSync(join(tmpdir(), 'vtta-edge-dry-run-'))
    result = await dryRun(outdir)
  }, 70_000)

  afterAll(() => rmSync(outdir, { recursive: true, force: true }))

  it('succeeds without warnings', () => {
    expect(result.code, result.output).toBe(0)
    expect(result.output).toContain('--dry-run: exiting now.')
    expect(warnings(result.output), result.output).toEqual([])
  })

  it('warns when production forgets a binding (so the check above is meaningful)', async () => {
    const config = join(outdir, 'wrangler.toml')
    writeFileSync(
      config,
      wranglerText
        .replace(/^main = "(.*)"$/m, (_m, main: string) => `main = ${JSON.stringify(join(root, main))}`)
        .replace(/\[\[env\.production\.durable_objects\.bindings\]\]\nname = "HEALTH"\n[^\n]*\n/, '')
    )
    const broken = await dryRun(join(outdir, 'broken'), config)
    expect(broken.output).toMatch(/not on "env\.production"[\s\S]*- HEALTH/)
    expect(warnings(broken.output)).not.toEqual([])
  }, 70_000)

  it('binds what production needs', () => {
    for (const binding of [
      'env.NATS_BRIDGE (NatsBridge)',
      'env.HEALTH (HealthRegistry)',
      'env.IMAGE_RATE_LIMITER',
      'env.DATACENTERS',
    ]) {
      expect(result.output).toContain(binding)
    }
    for (const secret of edgeSecrets) expect(result.output).not.toContain(`env.${secret}`)
  })

  it('writes a bundle whose size stays well under the Workers limit (reported)', () => {
    const dist = join(outdir, 'dist')
    const scripts = readdirSync(dist).filter((f) => /\.m?js$/.test(f))
    expect(scripts).toContain('index.js')
    const bundle = Buffer.concat(scripts.map((f) => readFileSync(join(dist, f))))
    const gzip = gzipSync(bundle).length
    const wranglerLine = /Total Upload: .*/.exec(result.output)?.[0] ?? '(no Total Upload line)'
    console.log(
      `edge bundle (wrangler deploy --dry-run --env ${ENV}): ${bundle.length} bytes, ${gzip} bytes gzip; wrangler: ${wranglerLine}`
    )
    // The Workers limit is 3 MB compressed on the free plan (10 MB paid); 1 MiB leaves room to grow.
    expect(gzip).toBeLessThan(1024 * 1024)
  })
})

// ---------------------------------------------------------------------------------------------------------
// The checker can fail

interface Mutation {
  description: string
  /** Breaks the production configuration, or the local one (its vars are checked for secrets). */
  mutate: (env: WorkerConfig, local: WorkerConfig) => void
  expected: RegExp
}

const mutations: Mutation[] = [
  {
    description: 'production forgets the Durable Object bindings',
    mutate: (env) => (env.durable_objects = { bindings: [] }),
    expected:
      /^env\.production: durable_objects: NATS_BRIDGE \(NatsBridge\) is missing: bindings are not inherited/,
  },
  {
    description: 'a bound class has no migration',
    mutate: (env) => (env.migrations = [{ tag: 'v1', new_sqlite_classes: ['NatsBridge'] }]),
    expected: /^env\.production: migrations: no migration creates HealthRegistry/,
  },
  {
    description: 'production has no cron',
    mutate: (env) => (env.triggers = { crons: [] }),
    expected: /^env\.production: triggers: crons is empty/,
  },
  {
    description: 'production also answers on workers.dev',
    mutate: (env) => (env.workers_dev = true),
    expected: /^env\.production: workers_dev: must be false/,
  },
  {
    description: 'the www route is missing',
    mutate: (env) =>
      (env.routes = env.routes?.filter((r) => typeof r !== 'string' && r.pattern !== 'www.vtta.io/*')),
    expected: /^env\.production: routes: www\.vtta\.io\/\* is missing/,
  },
  {
    description: 'production honours x-client-geo',
    mutate: (env) => (env.vars.ALLOW_GEO_OVERRIDE = 'true'),
    expected: /^env\.production: vars: ALLOW_GEO_OVERRIDE must be "false"/,
  },
  {
    description: 'DATACENTERS drifts from deploy/datacenters.production.json',
    mutate: (env) =>
      (env.vars.DATACENTERS = String(env.vars.DATACENTERS).replace('"lat":51.51', '"lat":51.5')),
    expected: /^env\.production: vars: DATACENTERS differs from deploy\/datacenters\.production\.json/,
  },
  {
    description: 'a DATACENTERS entry has no endpoints',
    mutate: (env) => {
      const dcs = z.array(z.record(z.string(), z.unknown())).parse(JSON.parse(String(env.vars.DATACENTERS)))
      delete dcs[1]?.endpoints
      env.vars.DATACENTERS = JSON.stringify(dcs)
    },
    expected: /^env\.production: vars: DATACENTERS: \[1\]\.endpoints: required/,
  },
  {
    description: 'DATACENTERS is not JSON',
    mutate: (env) => (env.vars.DATACENTERS = "[{id: 'fra1'}]"),
    expected: /^env\.production: vars: DATACENTERS is not a JSON string/,
  },
  {
    description: 'a probe interval the edge cannot read',
    mutate: (env) => (env.vars.PROBE_INTERVAL_MS = '5s'),
    expected: /^env\.production: vars: the edge refuses them: PROBE_INTERVAL_MS/,
  },
  {
    description: 'a secret is stored as a production var',
    mutate: (env) => (env.vars.ADMIN_TOKEN = 'correct horse battery staple'),
    expected: /^\[env\.production\.vars\]: secrets: ADMIN_TOKEN is a secret, never a var/,
  },
  {
    description: 'production sets the emulated WAN legs',
    mutate: (env) => (env.vars.DATACENTER_LEGS = '{}'),
    expected: /^\[env\.production\.vars\]: local-only: DATACENTER_LEGS is set by `WAN=1 npm start` only/,
  },
  {
    description: 'the local table sets the emulated WAN legs',
    mutate: (_env, top) => (top.vars.DATACENTER_LEGS = '{}'),
    expected: /^\[vars\]: local-only: DATACENTER_LEGS is set by `WAN=1 npm start` only/,
  },
  {
    description: 'a secret is stored as a local var',
    mutate: (_env, top) => (top.vars.GITHUB_WEBHOOK_SECRET = "It's a Secret to Everybody"),
    expected: /^\[vars\]: secrets: GITHUB_WEBHOOK_SECRET is a secret, never a var/,
  },
]

describe('the wrangler.toml checker', () => {
  it.each(mutations)('reports it when $description', ({ mutate, expected }) => {
    const env = copyOf(production)
    const top = copyOf(local)
    mutate(env, top)
    expect([env, top]).not.toEqual([production, local])
    const problems = productionProblems(
      env,
      varTables({ local: top, environments: { [ENV]: env } }),
      catalogue
    )
    expect(problems).toContainEqual(expect.stringMatching(expected))
  })
})
