/**
 * The deploy checks of where JetStream keeps what across regions (issue #15, point 4; "Bad input and
 * faults"): on the real stack.yml and production catalogue nothing is wrong; a catalogue whose home region
 * lacks a strict majority or three JetStream servers, a stream the services would place outside the home
 * region, a region of one server asked for R3, and a region whose server is missing from the gateways are
 * each refused with a problem naming the file and the cause.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { jetStreamPlan, type JetStreamPlanLayout } from '#shared/releases.ts'
import { catalogueProblems, natsTopologyProblems, productionAuthConfs } from '../../deploy/check/catalogue.ts'
import { jetStreamProblems } from '../../deploy/check/jetstream.ts'
import { loadStack, type Stack } from '../../deploy/check/stack-file.ts'
import { projectRoot } from '../../local/platform-specs.ts'

const read = (file: string) => readFileSync(join(projectRoot, file), 'utf8')
const stack = loadStack(read('stack.yml'), { VTTA_VERSION: '0.1.0', GITHUB_APP_ID: '123456' })
type Entry = { id: string; region: string; jetstream?: boolean } & Record<string, unknown>
const catalogue = JSON.parse(read('deploy/datacenters.production.json')) as Entry[]
const edited = (change: (dc: Entry) => Entry) => catalogue.map((dc) => change({ ...dc }))
const envOf = (s: Stack, service: string) => s.services[service]!.environment!

describe('the real stack and production catalogue', () => {
  it('place every stream the services create in Europe, the mirrors in us and ap', () => {
    expect(jetStreamProblems(stack, catalogue)).toEqual([])
    expect(catalogueProblems(catalogue)).toEqual([])
  })
})

describe('a catalogue that cannot keep the quorum through a lost ocean', () => {
  it('is refused when Europe holds no strict majority of the JetStream servers', () => {
    // sfo3 with JetStream: eu 3 of 6.
    const tie = edited((dc) => (dc.id === 'sfo3' ? { ...dc, jetstream: true } : dc))
    expect(catalogueProblems(tie)).toEqual([
      expect.stringMatching(
        /^deploy\/datacenters\.production\.json: \(root\): no region holds a strict majority of the 6 JetStream servers \(eu 3, us 2, ap 1\): losing one region could lose the meta quorum/
      ),
    ])
  })

  it('is refused when the home region has fewer than three JetStream servers', () => {
    // The majority without R3: eu 2 of 3.
    const small = edited((dc) => (dc.id === 'lon1' || dc.id === 'sgp1' ? { ...dc, jetstream: false } : dc))
    expect(catalogueProblems(small)).toEqual([
      expect.stringMatching(/\(root\): home region "eu" has 2 JetStream server\(s\); its R3 streams need 3$/),
    ])
    // Production's own rule, also for a catalogue of two datacenters (which the catalogue itself allows).
    const two = catalogue.filter((dc) => dc.id === 'fra1' || dc.id === 'ams3')
    expect(catalogueProblems(two)).toEqual([])
    expect(jetStreamProblems(stack, two)).toContain(
      "deploy/datacenters.production.json: jetstream: the home region eu has 2 JetStream server(s) (fra1, ams3): production's R3 streams need 3"
    )
  })
})

describe('streams placed outside the home region', () => {
  /** The services' plan with one stream changed. */
  const breaking =
    (stream: string, change: Partial<ReturnType<typeof jetStreamPlan>[number]>) =>
    (layout: JetStreamPlanLayout) =>
      jetStreamPlan(layout).map((s) => (s.stream === stream ? { ...s, ...change } : s))

  it('are refused when a service would create one without placement', () => {
    const problems = jetStreamProblems(stack, catalogue, breaking('RELEASES', { placement: undefined }))
    // Both services create it.
    expect(problems).toEqual(
      ['releases', 'notifier'].map(
        (service) =>
          `stack.yml: ${service}: jetstream: RELEASES (R3) would be placed anywhere, not in the home region eu (cluster eu, tag region:eu): its RAFT group could cross an ocean; JETSTREAM_HOME_REGION is "eu"`
      )
    )
  })

  it('are refused when the notifier is not told the home region', () => {
    const broken = structuredClone(stack)
    // No catalogue to derive it from, no variable: its claims bucket would land wherever it is asked from.
    delete envOf(broken, 'notifier').DATACENTERS_FILE
    const problems = jetStreamProblems(broken, catalogue)
    expect(problems).toContain(
      'stack.yml: notifier: jetstream: KV_notifier (R3) would be placed anywhere, not in the home region eu (cluster eu, tag region:eu): its RAFT group could cross an ocean; JETSTREAM_HOME_REGION is null'
    )
    expect(problems.every((p) => p.startsWith('stack.yml: notifier: '))).toBe(true)
  })

  it('are refused when the stack contradicts the catalogue, naming the variable', () => {
    const broken = structuredClone(stack)
    envOf(broken, 'releases').JETSTREAM_HOME_REGION = 'us'
    expect(jetStreamProblems(broken, catalogue)).toContain(
      'stack.yml: releases: jetstream: JETSTREAM_HOME_REGION="us" disagrees with deploy/datacenters.production.json, which gives fra1 "eu"'
    )
  })
})

describe('R3 in a region of one server', () => {
  it('is refused for the streams placed there by the stack', () => {
    const broken = structuredClone(stack)
    const env = envOf(broken, 'releases')
    delete env.DATACENTERS_FILE
    env.JETSTREAM_HOME_REGION = 'ap'
    const problems = jetStreamProblems(broken, catalogue)
    expect(problems).toContain(
      'stack.yml: releases: jetstream: GITHUB is R3 in region ap, which has 1 JetStream server(s) (sgp1): nats-server cannot place 3 replicas there'
    )
    expect(problems).toContain(
      'stack.yml: releases: jetstream: GITHUB (R3) would be placed in cluster ap (tags region:ap), not in the home region eu (cluster eu, tag region:eu): its RAFT group could cross an ocean; JETSTREAM_HOME_REGION is "ap"'
    )
  })

  it('is refused for a read mirror asked for three replicas', () => {
    const r3Mirrors = (layout: JetStreamPlanLayout) =>
      jetStreamPlan(layout).map((s) => (s.mirrorOf ? { ...s, num_replicas: 3 } : s))
    expect(jetStreamProblems(stack, catalogue, r3Mirrors)).toEqual([
      'stack.yml: releases: jetstream: KV_registry-us is R3 in region us, which has 1 JetStream server(s) (nyc3): nats-server cannot place 3 replicas there',
      'stack.yml: releases: jetstream: KV_registry-ap is R3 in region ap, which has 1 JetStream server(s) (sgp1): nats-server cannot place 3 replicas there',
    ])
  })
})

describe('the gateways', () => {
  it("are refused when a region's server is missing from another server's gateway list", () => {
    const confs = productionAuthConfs(catalogue)
    confs.set(
      'fra1',
      confs.get('fra1')!.replace(/^GATEWAYS: (.*)$/m, (_, text: string) => {
        const gateways = JSON.parse(text) as Array<{ name: string; urls: string[] }>
        const us = gateways.find((g) => g.name === 'us')!
        us.urls = us.urls.filter((u) => !u.includes('@nats-sfo3:'))
        return `GATEWAYS: ${JSON.stringify(gateways)}`
      })
    )
    expect(natsTopologyProblems(catalogue, confs)).toEqual([
      "deploy/datacenters.production.json: npm run nats-auth's auth-fra1.conf: the gateway entry of region us lacks sfo3",
    ])
  })
})
