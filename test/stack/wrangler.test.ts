/**
 * wrangler.toml's production environment (`npx wrangler deploy --env production`): read with wrangler's own
 * config reader (the same normalisation and validation `wrangler deploy` applies), checked for the
 * invariants below, and built with `wrangler deploy --dry-run`, which needs no Cloudflare account or network.
 *
 * As in stack.test.ts the invariants are a checker returning problems ("<where>: <invariant>: <detail>"), and
 * the negative tests break a copy of the real configuration to show that each problem is reported.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { experimental_readRawConfig, unstable_readConfig } from 'wrangler'
import { parseReachableCatalogue } from '#shared/catalogue.ts'
import { createUser } from '@nats-io/nkeys'

// Configuration documents are checked field by field; their shape is exactly what is under test.
type Doc = { [key: string]: any }

const root = fileURLToPath(new URL('../../', import.meta.url))
const readRepoFile = (path: string): string => readFileSync(root + path, 'utf8')
const configPath = join(root, 'wrangler.toml')
const catalogueFile = 'deploy/datacenters.production.json'
const ENV = 'production'

/** A plain deep copy (wrangler's objects have null prototypes), so a mutation breaks the copy only. */
const copyOf = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T

/** The production Worker as `wrangler deploy --env production` sees it (inheritance applied). */
const production = copyOf(
  unstable_readConfig({ config: configPath, env: ENV }, { hideWarnings: true })
) as Doc
/** The file as written: top-level keys and every `[env.*]` table. */
const raw = copyOf(experimental_readRawConfig({ config: configPath }).rawConfig) as Doc
const wranglerText = readRepoFile('wrangler.toml')
const catalogue: unknown = JSON.parse(readRepoFile(catalogueFile))

/** The edge's secrets: the bindings edge/env.ts documents as `Secret:`. */
const placeholderSeed = new TextDecoder().decode(createUser().getSeed())
const secretNames = [...readRepoFile('edge/env.ts').matchAll(/\/\*\*\s*Secret:[^*]*\*\/\s*(\w+)\??:/g)].map(
  (m) => m[1] as string
)

/**
 * The edge validates its vars on first use (edge/config.ts); run that validation on the production vars. Imported
 * by URL at run time: edge/ is type-checked with the Worker's types (tsc -p edge), not with this project's.
 */
type EdgeConfigFn = (vars: Record<string, unknown>) => unknown
const { edgeConfig } = (await import(new URL('../../edge/config.ts', import.meta.url).href)) as {
  edgeConfig: EdgeConfigFn
}

// ---------------------------------------------------------------------------------------------------------
// The invariant checker

function productionProblems(env: Doc, file: Doc, productionCatalogue: unknown, text: string): string[] {
  const problems: string[] = []
  const fail = (invariant: string, detail: string) => problems.push(`env.${ENV}: ${invariant}: ${detail}`)

  if (!env.name) fail('name', 'the production Worker needs a name')
  if (env.workers_dev !== false) fail('workers_dev', 'must be false (production answers on its routes only)')
  const routes = (env.routes ?? []) as Array<Doc | string>
  for (const pattern of ['vtta.io/*', 'www.vtta.io/*']) {
    const route = routes.find((r) => (typeof r === 'string' ? r : r.pattern) === pattern)
    if (!route) fail('routes', `${pattern} is missing`)
    else if (typeof route === 'string' || route.zone_name !== 'vtta.io')
      fail('routes', `${pattern} needs zone_name = "vtta.io"`)
  }

  // Durable Object bindings are not inherited by environments: each top-level one must be repeated.
  const bindings = (env.durable_objects?.bindings ?? []) as Doc[]
  for (const wanted of (file.durable_objects?.bindings ?? []) as Doc[]) {
    if (!bindings.some((b) => b.name === wanted.name && b.class_name === wanted.class_name))
      fail(
        'durable_objects',
        `${wanted.name} (${wanted.class_name}) is missing: bindings are not inherited by environments`
      )
  }
  const migrated = new Set(
    ((env.migrations ?? []) as Doc[]).flatMap((m) => [
      ...(m.new_sqlite_classes ?? []),
      ...(m.new_classes ?? []),
    ])
  )
  for (const binding of bindings) {
    if (!migrated.has(binding.class_name)) fail('migrations', `no migration creates ${binding.class_name}`)
  }
  if (!((env.triggers?.crons ?? []) as string[]).length)
    fail('triggers', 'crons is empty: the health probes have no backstop')

  const vars: Doc = env.vars ?? {}
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
      fail('vars', (error as Error).message)
    }
    if (JSON.stringify(datacenters) !== JSON.stringify(productionCatalogue))
      fail('vars', `DATACENTERS differs from ${catalogueFile}`)
  }
  if (vars.ALLOW_GEO_OVERRIDE !== 'false')
    fail('vars', 'ALLOW_GEO_OVERRIDE must be "false" (clients must not choose their location)')
  try {
    // Required secrets come from `wrangler secret put` (checked below), never vars: stand-ins here.
    edgeConfig({
      ORIGIN_CLIENT_ID: 'stand-in.access',
      ORIGIN_CLIENT_SECRET: 's'.repeat(43),
      NATS_EDGE_SEED: placeholderSeed,
      ...vars,
    })
  } catch (error) {
    fail('vars', `the edge refuses them: ${(error as Error).message}`)
  }

  // Secrets: never in any [vars] table of the file (a var is visible to anyone who can read the dashboard or
  // this repository), and each one listed with the command that sets it.
  const varTables: Array<[string, Doc]> = [
    ['[vars]', file.vars ?? {}],
    ...Object.entries((file.env ?? {}) as Doc).map(([name, e]): [string, Doc] => [
      `[env.${name}.vars]`,
      e.vars ?? {},
    ]),
  ]
  for (const [table, tableVars] of varTables) {
    for (const secret of secretNames) {
      if (secret in tableVars) problems.push(`${table}: secrets: ${secret} is a secret, never a var`)
    }
  }
  for (const secret of secretNames) {
    if (!new RegExp(`wrangler secret put ${secret} --env ${ENV}\\b`).test(text))
      fail('secrets', `${secret} is not listed (\`npx wrangler secret put ${secret} --env ${ENV}\`)`)
  }
  return problems
}

// ---------------------------------------------------------------------------------------------------------
// The real file

describe('wrangler.toml [env.production]', () => {
  it('has no problems at all', () => {
    expect(productionProblems(production, raw, catalogue, wranglerText)).toEqual([])
  })

  it('knows the edge secrets it must never store', () => {
    expect(secretNames.sort()).toEqual([
      'ADMIN_TOKEN',
      'GITHUB_WEBHOOK_SECRET',
      'IMAGE_SIGNING_KEY',
      'NATS_EDGE_SEED',
      'ORIGIN_CLIENT_ID',
      'ORIGIN_CLIENT_SECRET',
      'PURGE_TOKEN',
    ])
  })

  it('serves the production catalogue of deploy/datacenters.production.json, validated as the edge reads it', () => {
    const datacenters = parseReachableCatalogue(JSON.parse(production.vars.DATACENTERS), 'DATACENTERS')
    expect(datacenters).toEqual(catalogue)
    expect(datacenters.map((dc) => dc.id)).toEqual(['fra1', 'ams3', 'lon1'])
    expect(production.vars.ALLOW_GEO_OVERRIDE).toBe('false')
  })

  it('limits image misses per client IP and minute (the edge answers Retry-After: 60)', () => {
    expect(production.ratelimits).toEqual([
      { name: 'IMAGE_RATE_LIMITER', namespace_id: '1101', simple: { limit: 120, period: 60 } },
    ])
  })

  it('leaves the local configuration (top level) as it was', () => {
    const local = copyOf(unstable_readConfig({ config: configPath }, { hideWarnings: true })) as Doc
    expect(local.name).toBe('vtta-edge')
    expect(JSON.parse(local.vars.DATACENTERS).map((dc: Doc) => dc.id)).toEqual(['fra', 'ams', 'lon'])
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
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({ code, output: `${stdout}${stderr}`.replace(/\x1b\[[0-9;]*m/g, '') })
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
    for (const secret of secretNames) expect(result.output).not.toContain(`env.${secret}`)
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

type Mutation = { description: string; mutate: (env: Doc, file: Doc) => void; expected: RegExp }

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
    mutate: (env) => (env.routes = env.routes.filter((r: Doc) => r.pattern !== 'www.vtta.io/*')),
    expected: /^env\.production: routes: www\.vtta\.io\/\* is missing/,
  },
  {
    description: 'production honours x-client-geo',
    mutate: (env) => (env.vars.ALLOW_GEO_OVERRIDE = 'true'),
    expected: /^env\.production: vars: ALLOW_GEO_OVERRIDE must be "false"/,
  },
  {
    description: 'DATACENTERS drifts from deploy/datacenters.production.json',
    mutate: (env) => (env.vars.DATACENTERS = env.vars.DATACENTERS.replace('"lat":51.51', '"lat":51.5')),
    expected: /^env\.production: vars: DATACENTERS differs from deploy\/datacenters\.production\.json/,
  },
  {
    description: 'a DATACENTERS entry has no endpoints',
    mutate: (env) => {
      const dcs = JSON.parse(env.vars.DATACENTERS)
      delete dcs[1].endpoints
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
    mutate: (_env, file) => (file.env.production.vars.ADMIN_TOKEN = 'correct horse battery staple'),
    expected: /^\[env\.production\.vars\]: secrets: ADMIN_TOKEN is a secret, never a var/,
  },
  {
    description: 'a secret is stored as a local var',
    mutate: (_env, file) => (file.vars.GITHUB_WEBHOOK_SECRET = "It's a Secret to Everybody"),
    expected: /^\[vars\]: secrets: GITHUB_WEBHOOK_SECRET is a secret, never a var/,
  },
]

describe('the wrangler.toml checker', () => {
  it.each(mutations)('reports it when $description', ({ mutate, expected }) => {
    const env = copyOf(production)
    const file = copyOf(raw)
    mutate(env, file)
    expect([env, file]).not.toEqual([production, raw])
    expect(productionProblems(env, file, catalogue, wranglerText)).toContainEqual(
      expect.stringMatching(expected)
    )
  })

  it('reports a secret that is not listed with its `wrangler secret put` command', () => {
    const text = wranglerText.replace(
      /wrangler secret put IMAGE_SIGNING_KEY/g,
      'wrangler secret put IMAGE_KEY'
    )
    expect(productionProblems(production, raw, catalogue, text)).toEqual([
      'env.production: secrets: IMAGE_SIGNING_KEY is not listed (`npx wrangler secret put IMAGE_SIGNING_KEY --env production`)',
    ])
  })
})
