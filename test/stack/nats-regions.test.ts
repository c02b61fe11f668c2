/**
 * Production NATS across regions (issue #15, point 4, the servers): deploy/nats.conf is one file for every
 * region, each server's place coming from the auth.conf `npm run nats-auth` renders from the catalogue.
 * Proven on the six-datacenter fixture (fra1, ams3, lon1 in eu; nyc3, sfo3 in us, sfo3 without JetStream;
 * sgp1 in ap), on the production catalogue (the same six, DigitalOcean's ids) and on one of a single
 * region: the rendered files with the real nats.conf pass nats-server's own configuration test, routes stay
 * in their region, every region has its gateway entry; and the deploy checks name a cluster that crosses
 * regions, a region without a gateway entry, and a nats.conf that loses its per-region values.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseCatalogue, type Catalogue } from '#shared/catalogue.ts'
import { queueGroups, subjects } from '#shared/subjects.ts'
import { kvStreamName, registryMirrorBucket } from '#shared/releases.ts'
import { productionAuthFile, writeProductionAuth } from '../../local/nats-auth/command.ts'
import { catalogueProblems, natsTopologyProblems, productionAuthConfs } from '../../deploy/check/catalogue.ts'
import { natsConfProblems } from '../../deploy/check/nats-conf.ts'
import { projectRoot } from '../../local/platform-specs.ts'

const read = (file: string) => readFileSync(join(projectRoot, file), 'utf8')
const sixFile = 'test/fixtures/datacenters/six-continents.json'
const six: Catalogue = parseCatalogue(JSON.parse(read(sixFile)), sixFile)
const production: Catalogue = parseCatalogue(
  JSON.parse(read('deploy/datacenters.production.json')),
  'deploy/datacenters.production.json'
)
const natsConf = read('deploy/nats.conf')

/** A variable of an auth.conf (one JSON value per line, as auth-config.ts writes them). */
const variable = (auth: string, name: string): unknown =>
  JSON.parse(new RegExp(`^${name}: (.*)$`, 'm').exec(auth)?.[1] ?? 'null')
const servers = (urls: unknown) =>
  (urls as string[]).map((u) => /@nats-([a-z0-9-]+):(\d+)$/.exec(u)?.slice(1).join(':'))

describe('npm run nats-auth on six datacenters in three regions', () => {
  let dir: string
  let files: string[]
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vtta-nats-regions-'))
    files = writeProductionAuth(join(dir, 'credentials'), six)
    // nats.conf's WebSocket certificate: a throwaway one for the configuration test.
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'].concat(
        ['-subj', '/CN=nats', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]
      ),
      { encoding: 'utf8' }
    )
    expect(made.status, made.stderr).toBe(0)
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const auth = (dc: string) => readFileSync(join(dir, 'credentials', productionAuthFile(dc)), 'utf8')

  it('writes one auth.conf per datacenter, routes inside the region, every region as a gateway', () => {
    expect(files.map((f) => f.slice(f.lastIndexOf('/') + 1))).toEqual(six.map((dc) => `auth-${dc.id}.conf`))
    const nyc3 = auth('nyc3')
    expect(variable(nyc3, 'CLUSTER_NAME')).toBe('us')
    expect(variable(nyc3, 'REGION_TAG')).toBe('region:us')
    expect(variable(nyc3, 'JETSTREAM')).toBe(true)
    expect(servers(variable(nyc3, 'ROUTES'))).toEqual(['nyc3:6222', 'sfo3:6222'])
    const gateways = variable(nyc3, 'GATEWAYS') as Array<{ name: string; urls: string[] }>
    expect(gateways.map((g) => [g.name, servers(g.urls)])).toEqual([
      ['eu', ['fra1:7222', 'ams3:7222', 'lon1:7222']],
      ['us', ['nyc3:7222', 'sfo3:7222']],
      ['ap', ['sgp1:7222']],
    ])
    // Gateway URLs carry the gateway password, as route URLs carry the route password.
    const password = variable(nyc3, 'GATEWAY_PASSWORD') as string
    expect(password).toMatch(/^[\w-]{43}$/)
    expect(gateways[0]!.urls[0]).toBe(`nats://gateway:${password}@nats-fra1:7222`)
    expect(variable(auth('sfo3'), 'JETSTREAM')).toBe(false)
    expect(servers(variable(auth('sgp1'), 'ROUTES'))).toEqual(['sgp1:6222'])
    // The same gateway list everywhere (a server ignores its own region's entry).
    for (const dc of six) expect(variable(auth(dc.id), 'GATEWAYS'), dc.id).toEqual(gateways)
  })

  it("scopes each server's permissions to its region, as npm start does", () => {
    // sgp1's image services answer ap's transforms; the release service keeps the us and ap mirrors.
    expect(auth('sgp1')).toContain(`"${subjects.imageTransformInRegion('ap')} ${queueGroups.images}"`)
    expect(auth('nyc3')).not.toContain(`"${subjects.imageTransformInRegion('ap')} ${queueGroups.images}"`)
    for (const region of ['us', 'ap'])
      expect(auth('fra1')).toContain(`$JS.API.STREAM.CREATE.${kvStreamName(registryMirrorBucket(region))}"`)
  })

  /** `nats-server -t` on deploy/nats.conf with `auth` beside it, as the nats-<dc> service runs it. */
  const configurationTest = (dc: string, authText: string) => {
    const serverDir = join(dir, 'servers', dc)
    mkdirSync(serverDir, { recursive: true })
    writeFileSync(join(serverDir, 'auth.conf'), authText)
    writeFileSync(
      join(serverDir, 'nats.conf'),
      natsConf
        .replace('/run/secrets/nats_ws_tls_cert', join(dir, 'cert.pem'))
        .replace('/run/secrets/nats_ws_tls_key', join(dir, 'key.pem'))
        .replace(/store_dir: \/data/, `store_dir: ${join(serverDir, 'data')}`)
    )
    return spawnSync('nats-server', ['-t', '-c', join(serverDir, 'nats.conf')], {
      env: { PATH: process.env.PATH ?? '', SERVER_NAME: `nats-${dc}`, DC_TAG: `dc:${dc}` },
      encoding: 'utf8',
    })
  }

  it("passes nats-server's configuration test with deploy/nats.conf, for every datacenter", () => {
    for (const dc of six) {
      const test = configurationTest(dc.id, auth(dc.id))
      expect(test.status, `${dc.id}: ${test.stderr}`).toBe(0)
    }
    // And the test fails when a variable nats.conf needs is missing (it is not a rubber stamp).
    const broken = configurationTest('sgp1', auth('sgp1').replace(/^GATEWAYS: .*$/m, ''))
    expect(broken.status).not.toBe(0)
    expect(broken.stderr).toMatch(/variable reference for 'GATEWAYS'/)
  })

  it('passes it for the production catalogue, whose three regions each have their gateway', () => {
    const gateway = (...dcs: string[]) => dcs.map((dc) => `nats://gateway:x@nats-${dc}:7222`)
    for (const [dc, text] of productionAuthConfs(production)) {
      expect(variable(text, 'GATEWAYS')).toEqual([
        { name: 'eu', urls: gateway('fra1', 'ams3', 'lon1') },
        { name: 'us', urls: gateway('nyc3', 'sfo3') },
        { name: 'ap', urls: gateway('sgp1') },
      ])
      const test = configurationTest(`prod-${dc}`, text)
      expect(test.status, `${dc}: ${test.stderr}`).toBe(0)
    }
    expect(variable(productionAuthConfs(production).get('sfo3')!, 'JETSTREAM')).toBe(false)
  })

  it('passes it for a catalogue of one region too (the gateway lists its own region)', () => {
    const europe = production.filter((dc) => dc.region === 'eu')
    for (const [dc, text] of productionAuthConfs(europe)) {
      expect(variable(text, 'GATEWAYS')).toEqual([
        { name: 'eu', urls: europe.map((d) => `nats://gateway:x@nats-${d.id}:7222`) },
      ])
      const test = configurationTest(`eu-${dc}`, text)
      expect(test.status, `${dc}: ${test.stderr}`).toBe(0)
    }
  })
})

describe('the deploy checks of the NATS topology', () => {
  const confs = () => productionAuthConfs(six)
  const edit = (dc: string, change: (text: string) => string) => {
    const all = confs()
    all.set(dc, change(all.get(dc)!))
    return all
  }

  it('find nothing wrong with what npm run nats-auth renders', () => {
    expect(natsTopologyProblems(six)).toEqual([])
    expect(catalogueProblems(JSON.parse(read('deploy/datacenters.production.json')))).toEqual([])
  })

  it('name a server whose cluster routes cross regions', () => {
    const crossing = edit('nyc3', (t) =>
      t.replace(/^(ROUTES: \[)/m, '$1"nats-route://route:x@nats-fra1:6222",')
    )
    expect(natsTopologyProblems(six, crossing)).toEqual([
      "deploy/datacenters.production.json: npm run nats-auth's auth-nyc3.conf: nats-nyc3 (region us) routes to fra1 in region eu: a cluster must stay inside its region (regions meet through gateways)",
    ])
  })

  it('name a region without a gateway entry', () => {
    const lost = edit('fra1', (t) =>
      t.replace(/^GATEWAYS: (.*)$/m, (_, list: string) => {
        const gateways = JSON.parse(list) as Array<{ name: string }>
        return `GATEWAYS: ${JSON.stringify(gateways.filter((g) => g.name !== 'ap'))}`
      })
    )
    expect(natsTopologyProblems(six, lost)).toEqual([
      "deploy/datacenters.production.json: npm run nats-auth's auth-fra1.conf: region ap (sgp1) has no gateway entry: nats-fra1 cannot reach it",
    ])
  })

  it('name a server in the wrong cluster, a missing route and a JetStream server the catalogue rules out', () => {
    const wrong = edit('sfo3', (t) =>
      t
        .replace(/^CLUSTER_NAME: .*$/m, 'CLUSTER_NAME: "eu"')
        .replace(/^JETSTREAM: .*$/m, 'JETSTREAM: true')
        .replace(/^(ROUTES: )\[[^,]*,/m, '$1[')
    )
    expect(natsTopologyProblems(six, wrong)).toEqual([
      `deploy/datacenters.production.json: npm run nats-auth's auth-sfo3.conf: CLUSTER_NAME must be the region of sfo3, "us", not "eu"`,
      `deploy/datacenters.production.json: npm run nats-auth's auth-sfo3.conf: JETSTREAM must be false as the catalogue says for sfo3`,
      `deploy/datacenters.production.json: npm run nats-auth's auth-sfo3.conf: nats-sfo3 has no route to nyc3 of its region us`,
    ])
  })

  const natsConfMutations: Array<[what: string, change: (conf: string) => string, expected: RegExp]> = [
    [
      'the gateway block is gone',
      (c) => c.replace(/^gateway \{[\s\S]*?^\}/m, ''),
      /^deploy\/nats\.conf: no gateway block: the regions must be joined by gateways/,
    ],
    [
      'one cluster spans every region again',
      (c) => c.replace(/^(cluster \{\n\s*name:) \$CLUSTER_NAME/m, '$1 vtta'),
      /^deploy\/nats\.conf: the cluster's name must be \$CLUSTER_NAME/,
    ],
    [
      'gateways accept anyone',
      (c) => c.replace(/^\s*authorization \{ user: gateway.*$/m, ''),
      /^deploy\/nats\.conf: gateways must authenticate/,
    ],
    [
      'the gateway listens elsewhere',
      (c) => c.replace('listen: 0.0.0.0:7222', 'listen: 0.0.0.0:7244'),
      /^deploy\/nats\.conf: the gateway must listen on port 7222/,
    ],
    [
      'servers lose their region tag',
      (c) => c.replace('server_tags: [$DC_TAG, $REGION_TAG]', 'server_tags: [$DC_TAG]'),
      /^deploy\/nats\.conf: server_tags must be \[\$DC_TAG, \$REGION_TAG\]/,
    ],
    [
      'every server runs JetStream whatever the catalogue says',
      (c) => c.replace(/^\s*enabled: \$JETSTREAM$/m, ''),
      /^deploy\/nats\.conf: jetstream must say enabled: \$JETSTREAM/,
    ],
  ]
  it.each(natsConfMutations)('fail nats.conf when %s', (_, change, expected) => {
    expect(natsConfProblems(natsConf)).toEqual([])
    const broken = change(natsConf)
    expect(broken).not.toBe(natsConf)
    const problems = natsConfProblems(broken)
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(expected)
  })
})
