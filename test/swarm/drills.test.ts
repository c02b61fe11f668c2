/**
 * The operator's day on a real Docker Swarm (`npm run test:swarm`): `npm run swarm:up` on a fresh
 * LOCAL_DIR, the edge in front of it, then each drill of docs/operations.md, run by its own runbook
 * commands (local/docker-swarm/runbook.ts), under a steady stream of image requests and release
 * deliveries through the edge. Each drill prints its figures; none may fail a request, lose a release
 * or announce one twice. `npm run swarm:down` at the end leaves nothing behind.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import sharp from 'sharp'
import { z } from 'zod'
import { swarmUp, packageVersion, type SwarmUp } from '../../local/docker-swarm/up.ts'
import { swarmDown } from '../../local/docker-swarm/down.ts'
import {
  managerOf,
  productionCatalogue,
  swarmNodes,
  outside,
  type SwarmNode,
} from '../../local/docker-swarm/topology.ts'
import { servicesOf, type ServiceName } from '#shared/services.ts'
import { attempt, docker, dockerSucceeds, run } from '../../local/docker-swarm/command.ts'
import { runRunbook, type RunbookContext } from '../../local/docker-swarm/runbook.ts'
import { converge, deployEnv, swarmWebhook } from '../../local/docker-swarm/deploy.ts'
import { builderOf, buildBackend, buildBrokenBackend, push } from '../../local/docker-swarm/images.ts'
import { crashNode, nodeDisk, startEngine, waitForEngines } from '../../local/docker-swarm/engines.ts'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { natsUserAuth } from '#shared/nats-permissions.ts'
import { embedTitles, recordedCalls } from '../../local/stand-ins/discord.ts'
import { edgeUrl, swarmEdgeSpec } from '../../local/docker-swarm/outside.ts'
import { loadEdgeSecrets } from '../../local/edge-secrets.ts'
import { ensureLocalGitHubApp } from '../../local/github-app.ts'
import { startProcess, stopProcess, type Supervised } from '../../local/processes.ts'
import { waitForHttp } from '../../local/wait.ts'
import { standIns } from '../../local/addresses.ts'
import { startOriginServer, type OriginServer } from '../support/origin-server.ts'
import { describeFigures, underLoad, type LoadTarget } from './load.ts'
import { projectRoot } from '../../local/platform-specs.ts'
import { parseComposeYaml } from '../../deploy/check/stack-file.ts'

const localDir = mkdtempSync(join(tmpdir(), 'vtta-swarm-'))
const nodes = swarmNodes(localDir)
const [fra, ams, lon] = nodes as [SwarmNode, SwarmNode, SwarmNode]
/** Where `docker node`, `service` and `secret` go: a manager (nodes outside the home region are workers). */
const manager = managerOf(nodes)
const catalogue = productionCatalogue()
const backendServices = ['images', 'releases', 'notifier'] as const satisfies readonly ServiceName[]
/**
 * The datacenters of the production catalogue where a spread backend service runs its one task each, sorted:
 * every one, but the release consumers only in the home region (shared/services.ts, stack.yml's constraint).
 */
const dcsOf = (service: ServiceName) =>
  catalogue
    .filter((dc) => servicesOf(catalogue, dc).includes(service))
    .map((dc) => dc.id)
    .sort()
let up: SwarmUp
let edge: Supervised
let origin: OriginServer
let ctx: RunbookContext
let target: LoadTarget
let secrets: ReturnType<typeof loadEdgeSecrets>['secrets']
const figures: string[] = []

/** Where each running task of a service is: node hostnames. */
const taskNodes = (service: string) =>
  docker(manager.dockerHost, [
    'service',
    'ps',
    `vtta_${service}`,
    '--filter',
    'desired-state=running',
    '--format',
    '{{.Node}} {{.CurrentState}}',
  ])
    .split('\n')
    .filter((l) => l.includes('Running'))
    .map((l) => l.split(' ')[0]!)
    .sort()

const updateState = (service: string) =>
  docker(manager.dockerHost, [
    'service',
    'inspect',
    '--format',
    '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}',
    `vtta_${service}`,
  ]).trim()

/** Each service's update state and Swarm's message for it: what a stuck roll is waiting on. */
const updateStates = (services: string[]) => () =>
  services
    .map((s) => {
      const status = docker(manager.dockerHost, [
        'service',
        'inspect',
        '--format',
        '{{if .UpdateStatus}}{{.UpdateStatus.State}}: {{.UpdateStatus.Message}}{{end}}',
        `vtta_${s}`,
      ]).trim()
      const tasks = docker(manager.dockerHost, [
        'service',
        'ps',
        '--no-trunc',
        '--format',
        '{{.Node}} {{.Image}} {{.CurrentState}} {{.Error}}',
        `vtta_${s}`,
      ])
        .trim()
        .split('\n')
        .slice(0, 6)
        .join(' | ')
      return `${s} [${status}] ${tasks}`
    })
    .join('; ')

/** Every service of a datacenter runs a task in it again (after a drain or a cut). */
const servesAgain = (dc: string) =>
  backendServices.filter((s) => dcsOf(s).includes(dc)).every((s) => taskNodes(s).includes(dc)) &&
  taskNodes(`web-${dc}`).length === 1 &&
  taskNodes(`nats-${dc}`).length === 1

/** The swarm's managers answer (they have a leader). */
const managersAnswer = () => dockerSucceeds(manager.dockerHost, ['node', 'ls'])

/** The stack's containers running on a node, from its own engine. */
const stackContainers = (node: SwarmNode) =>
  docker(node.dockerHost, ['ps', '-q', '--filter', 'name=vtta_']).split('\n').filter(Boolean).length

const runningImage = (service: string) =>
  docker(manager.dockerHost, [
    'service',
    'inspect',
    '--format',
    '{{.Spec.TaskTemplate.ContainerSpec.Image}}',
    `vtta_${service}`,
  ]).trim()

/** A service's log files on a node and their sizes on disk (more than one once it rotated). */
function serviceLogFiles(node: SwarmNode, service: string) {
  const containers = join(node.dir, 'data', 'containers')
  const sizes: number[] = []
  for (const id of readdirSync(containers)) {
    const dir = join(containers, id, 'local-logs')
    try {
      if (!readFileSync(join(containers, id, 'config.v2.json'), 'utf8').includes(service)) continue
      for (const f of readdirSync(dir)) sizes.push(statSync(join(dir, f)).size)
    } catch {
      // not the service's, or gone
    }
  }
  return { bytes: sizes.reduce((a, b) => a + b, 0), files: sizes.length, largest: Math.max(0, ...sizes) }
}

/** The stack's own logging options (x-logging in stack.yml), read as the deploy checks read the file. */
const stackLogging = () =>
  z
    .object({ 'x-logging': z.object({ driver: z.string(), options: z.record(z.string(), z.string()) }) })
    .parse(parseComposeYaml(readFileSync(join(projectRoot, 'stack.yml'), 'utf8')))['x-logging']

/**
 * Polls `check` until it holds. A check that throws is "not yet": the managers answer errors while they
 * elect a leader (after a partition heals, for example), and the drill waits as an operator would.
 */
async function until(
  what: string,
  check: () => boolean,
  timeoutMs: number,
  explain?: () => string
): Promise<number> {
  const started = Date.now()
  let lastError = ''
  for (;;) {
    try {
      if (check()) return Date.now() - started
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error)
    }
    if (Date.now() - started > timeoutMs) {
      let state = ''
      try {
        state = explain ? ` (state: ${explain()})` : ''
      } catch (error) {
        state = ` (state unknown: ${error instanceof Error ? error.message : String(error)})`
      }
      throw new Error(
        `${what}: not within ${timeoutMs / 1000} s${lastError ? ` (last: ${lastError})` : ''}${state}`
      )
    }
    await sleep(1_000)
  }
}

beforeAll(async () => {
  await swarmDown(localDir)
  up = await swarmUp(localDir, packageVersion(), () => {})
  figures.push(
    `image ghcr.io/vtta/backend:${up.version}: ${(up.build.sizeBytes / 1e6).toFixed(0)} MB, built in ${up.build.seconds.toFixed(1)} s; stack converged in ${(up.convergeMs / 1000).toFixed(0)} s`
  )
  const photo = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#2563eb' } })
    .jpeg()
    .toBuffer()
  origin = await startOriginServer(
    { 'photo.jpg': { body: photo, contentType: 'image/jpeg' } },
    { host: outside.imageOrigin.host.split(':')[0], port: Number(outside.imageOrigin.host.split(':')[1]) }
  )
  secrets = loadEdgeSecrets(up.swarmDir, { create: false }).secrets
  edge = startProcess(
    swarmEdgeSpec(up.swarmDir, nodes, secrets, {
      PROBE_INTERVAL_MS: '1000',
      PROBE_TIMEOUT_MS: '1500',
      DOWN_AFTER: '2',
      UP_AFTER: '3',
      HEALTH_MEMO_MS: '1000',
    })
  )
  await waitForHttp(`${edgeUrl}/status.json`, { timeoutMs: 60_000, what: 'the edge', abort: edge.exited })
  ctx = {
    dockerHost: manager.dockerHost,
    cwd: join(up.swarmDir, 'checkout'),
    env: {
      ...deployEnv(up.version, up.images, ensureLocalGitHubApp(up.swarmDir, {}), up.swarmDir),
      ADMIN_TOKEN: secrets.ADMIN_TOKEN,
      EDGE: edgeUrl,
    },
  }
  target = {
    edge: edgeUrl,
    github: outside.github.url,
    discord: outside.discord.url,
    imageUrl: (n) => origin.fileUrl('photo.jpg', `n=${n}`),
    // A client near Amsterdam: steered to ams3, which the drain drill takes away.
    headers: { 'x-client-geo': '52.37,4.90' },
  }
}, 600_000)

afterAll(async () => {
  console.log(['swarm drills:', ...figures.map((f) => `  ${f}`)].join('\n'))
  try {
    if (edge) await stopProcess(edge)
    await origin?.close()
  } finally {
    await swarmDown(localDir)
    rmSync(localDir, { recursive: true, force: true })
  }
}, 180_000)

describe('the operator’s day on a real swarm', () => {
  it('deploys one replica per node, each in its datacenter, healthy as built', () => {
    // images on every node; releases and notifier on the home region's (eu) only.
    for (const service of backendServices) expect(taskNodes(service), service).toEqual(dcsOf(service))
    for (const node of nodes) expect(taskNodes(`web-${node.dc}`)).toEqual([node.dc])
    for (const node of nodes) expect(taskNodes(`nats-${node.dc}`)).toEqual([node.dc])
    // The Dockerfile's invariants, in a running container of every node.
    for (const node of nodes) {
      const id = docker(node.dockerHost, ['ps', '-q', '--filter', 'name=vtta_images']).trim()
      expect(id).not.toBe('')
      expect(docker(node.dockerHost, ['exec', id, 'id', '-u']).trim()).toBe('1000')
      expect(dockerSucceeds(node.dockerHost, ['exec', id, 'touch', '/app/written'])).toBe(false)
      expect(dockerSucceeds(node.dockerHost, ['exec', id, 'touch', '/tmp/written'])).toBe(true)
      expect(docker(node.dockerHost, ['exec', id, 'ls', 'node_modules']).split('\n')).not.toContain('vitest')
      expect(docker(node.dockerHost, ['inspect', '--format', '{{.State.Health.Status}}', id]).trim()).toBe(
        'healthy'
      )
      expect(
        docker(node.dockerHost, [
          'inspect',
          '--format',
          '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Init}}',
          id,
        ]).trim()
      ).toBe('true true')
    }
  })

  it(
    'drains Amsterdam the runbook’s way and brings it back: no request fails',
    { timeout: 600_000 },
    async () => {
      const load = underLoad(target)
      await sleep(5_000)
      const started = Date.now()
      runRunbook('drain', ctx, { DC: ams.dc })
      // The node gives up every task (the runbook's `docker node ps` shows them Shutdown)...
      await until('ams3 runs no container', () => stackContainers(ams) === 0, 180_000)
      expect(taskNodes('web-ams3')).toEqual([])
      // ...and nothing moves: images 5/6, releases and notifier 2/3 in the home region, each third Pending.
      for (const service of backendServices)
        expect(taskNodes(service), service).toEqual(dcsOf(service).filter((n) => n !== ams.dc))
      runRunbook('activate', ctx, { DC: ams.dc })
      // ...and takes its own back, healthy, before the edge sends it traffic again.
      await until('ams3 serves again', () => servesAgain('ams3'), 300_000)
      await converge(manager.dockerHost, 240_000)
      runRunbook('undrain', ctx, { DC: ams.dc })
      const convergeMs = Date.now() - started
      await sleep(5_000)
      const f = await load.stop()
      figures.push(describeFigures('drain ams3 and back', f, convergeMs))
      expect(f.failures).toEqual([])
      expect(f.accepted.length).toBeGreaterThan(0)
      expect(f.announcedOnce).toBe(f.accepted.length)
      for (const service of backendServices) expect(taskNodes(service), service).toEqual(dcsOf(service))
    }
  )

  it(
    'loses London’s node: the edge fails over, releases go on, nothing lands in the wrong datacenter',
    { timeout: 600_000 },
    async () => {
      // A client in London: served by lon1 until its node dies, then by the next datacenter.
      const london = { ...target, headers: { 'x-client-geo': '51.51,-0.13' } }
      const load = underLoad(london)
      await sleep(10_000)
      const cut = Date.now()
      crashNode(lon)
      await until(
        'lon1 seen down by the swarm',
        () =>
          docker(manager.dockerHost, ['node', 'inspect', '--format', '{{.Status.State}}', 'lon1']).trim() ===
          'down',
        120_000
      )
      await sleep(20_000)
      // Nothing of London's runs elsewhere; the spread services wait (max one per node) instead: releases
      // and notifier run 2/3 on fra1 and ams3, their third task Pending although the nodes of us and ap have
      // room (they stay in the home region).
      for (const service of ['web-lon1', 'nats-lon1'])
        expect(taskNodes(service).filter((n) => n !== 'lon1')).toEqual([])
      for (const service of backendServices)
        expect(
          taskNodes(service).filter((n) => n !== 'lon1'),
          service
        ).toEqual(dcsOf(service).filter((n) => n !== 'lon1'))
      const healed = Date.now()
      startEngine(lon)
      await waitForEngines([lon])
      // A manager that comes back can make the leader step down (a higher term), and the managers answer
      // "no leader" until they elect one again (the runbook says to wait for it).
      const leaderlessMs = await until('the managers have a leader again', () => managersAnswer(), 180_000)
      await until('lon1 serves again', () => servesAgain('lon1'), 300_000)
      await converge(manager.dockerHost, 300_000)
      const convergeMs = Date.now() - healed
      await sleep(10_000)
      const f = await load.stop()
      const before = f.answers.filter((a) => a.at < cut)
      const during = f.answers.filter((a) => a.at > cut + 15_000 && a.at < healed)
      figures.push(
        describeFigures('lon1 dies, comes back', f, convergeMs) +
          `; managers without a leader for ${(leaderlessMs / 1000).toFixed(0)} s after its return` +
          `; before the cut ${before.filter((a) => a.dc === 'lon1').length}/${before.length} served by lon1, while down ${during.filter((a) => a.dc !== 'lon1').length}/${during.length} by another datacenter`
      )
      expect(f.failures).toEqual([])
      expect(before.filter((a) => a.dc === 'lon1').length).toBeGreaterThan(0)
      expect(during.length).toBeGreaterThan(0)
      expect(during.every((a) => a.dc !== 'lon1')).toBe(true)
      expect(f.accepted.length).toBeGreaterThan(0)
      expect(f.announcedOnce).toBe(f.accepted.length)
      expect(f.announcedTwice).toBe(0)
    }
  )

  it(
    'rolls a new version (VTTA_VERSION bump) under load: no request fails',
    { timeout: 900_000 },
    async () => {
      const builder = builderOf(up.swarmDir)
      const next = `${up.version}-next`
      push(builder, buildBackend(builder, next).image)
      const load = underLoad(target)
      await sleep(5_000)
      const started = Date.now()
      runRunbook('deploy', ctx, { VTTA_VERSION: next })
      const services = [...backendServices, ...nodes.map((n) => `web-${n.dc}`)]
      await until(
        'every service updated',
        () => services.every((s) => updateState(s) === 'completed'),
        600_000,
        updateStates(services)
      )
      const convergeMs = Date.now() - started
      const f = await load.stop()
      figures.push(describeFigures(`roll ${up.version} to ${next}`, f, convergeMs))
      for (const s of services) expect(runningImage(s)).toMatch(new RegExp(`:${next}(@|$)`))
      expect(f.failures).toEqual([])
      expect(f.announcedOnce).toBe(f.accepted.length)
      ctx.env!.VTTA_VERSION = next
    }
  )

  it(
    'rolls out a broken version: Swarm rolls back by itself and the old one keeps serving',
    { timeout: 900_000 },
    async () => {
      const builder = builderOf(up.swarmDir)
      const current = ctx.env!.VTTA_VERSION!
      const broken = `${up.version}-broken`
      push(builder, buildBrokenBackend(builder, `ghcr.io/vtta/backend:${current}`, broken))
      const load = underLoad(target)
      await sleep(5_000)
      const started = Date.now()
      runRunbook('deploy', ctx, { VTTA_VERSION: broken })
      await until(
        'images rolled back',
        () => updateState('images') === 'rollback_completed',
        600_000,
        updateStates(['images'])
      )
      await until(
        'every service rolled back',
        () => [...backendServices, 'web-fra1'].every((s) => updateState(s) === 'rollback_completed'),
        300_000,
        updateStates([...backendServices, 'web-fra1'])
      )
      await converge(manager.dockerHost, 240_000)
      const convergeMs = Date.now() - started
      const f = await load.stop()
      figures.push(describeFigures(`roll out a broken ${broken}, rolled back`, f, convergeMs))
      for (const s of backendServices) expect(runningImage(s)).toMatch(new RegExp(`:${current}(@|$)`))
      expect(f.failures).toEqual([])
      expect(f.announcedOnce).toBe(f.accepted.length)
    }
  )

  it(
    'rotates the Discord webhook secret by the runbook: the next release is announced on the new one',
    { timeout: 600_000 },
    async () => {
      const newUrl = swarmWebhook(standIns.discord.webhookUrl).replace(
        '123456789012345678',
        '323456789012345678'
      )
      const started = Date.now()
      runRunbook('rotate-discord-webhook', ctx, { NEW_DISCORD_WEBHOOK_URL: newUrl })
      await until('notifier rolled', () => updateState('notifier') === 'completed', 400_000)
      const convergeMs = Date.now() - started
      const load = underLoad(target, () => newUrl)
      await sleep(15_000)
      const f = await load.stop()
      figures.push(describeFigures('rotate discord_webhook_url to _v2', f, convergeMs))
      expect(f.accepted.length).toBeGreaterThan(0)
      expect(f.announcedOnce).toBe(f.accepted.length)
      expect(dockerSucceeds(manager.dockerHost, ['secret', 'rm', 'discord_webhook_url_v1'])).toBe(true)
    }
  )

  it('a service flooding its log stays under the log driver’s cap', { timeout: 300_000 }, async () => {
    // The stack's own logging options (x-logging in stack.yml) on a service that writes as fast as it can.
    const logging = stackLogging()
    const capBytes =
      Number.parseInt(logging.options['max-size']!, 10) * 1024 * 1024 * Number(logging.options['max-file'])
    docker(manager.dockerHost, [
      'service',
      'create',
      '--name',
      'vtta_log-flood',
      '--detach',
      '--constraint',
      `node.labels.dc == ${fra.dc}`,
      '--log-driver',
      logging.driver,
      ...Object.entries(logging.options).flatMap(([k, v]) => ['--log-opt', `${k}=${v}`]),
      '--no-healthcheck',
      '--entrypoint',
      'node',
      `${outside.imageOrigin.host.split(':')[0]}:5000/vtta/backend:${ctx.env!.VTTA_VERSION}`,
      '-e',
      "const c=require('crypto');(function w(){while(process.stdout.write(c.randomBytes(3072).toString('base64')+'\\n'));process.stdout.once('drain',w)})()",
    ])
    const logFiles = () => serviceLogFiles(fra, 'vtta_log-flood')
    const started = Date.now()
    let kept = { bytes: 0, files: 0, largest: 0 }
    let mostFiles = 0
    while (Date.now() - started < 60_000) {
      await sleep(5_000)
      const now = logFiles()
      if (now.bytes > kept.bytes) kept = now
      mostFiles = Math.max(mostFiles, now.files)
    }
    docker(manager.dockerHost, ['service', 'rm', 'vtta_log-flood'])
    figures.push(
      `log flood: at most ${(kept.bytes / 1e6).toFixed(1)} MB in ${kept.files} files (at most ${mostFiles} at once, largest ${(kept.largest / 1e6).toFixed(1)} MB) over 60 s of flooding, cap ${(capBytes / 1e6).toFixed(0)} MB`
    )
    // Random lines (the local driver compresses what it rotates): it wrote past max-size, so it rotated,
    // yet no file outgrows max-size and the total stays under the cap.
    const maxSize = Number.parseInt(logging.options['max-size']!, 10) * 1024 * 1024
    expect(kept.files).toBeGreaterThan(1)
    expect(kept.largest).toBeLessThanOrEqual(maxSize)
    expect(kept.bytes).toBeLessThanOrEqual(capBytes)
    // And the stack's services really run with those options (x-logging reached them through the deploy).
    for (const service of ['images', 'web-fra1', 'nats-fra1'])
      expect(
        JSON.parse(
          docker(manager.dockerHost, [
            'service',
            'inspect',
            '--format',
            '{{json .Spec.TaskTemplate.LogDriver}}',
            `vtta_${service}`,
          ])
        )
      ).toEqual({ Name: logging.driver, Options: logging.options })
  })

  it(
    'fills one node’s disk: the alert comes first, JetStream there stops, no release is lost, it catches up',
    { timeout: 900_000 },
    async () => {
      // London's node: the load's client is near Amsterdam, so the edge keeps serving it from ams3 while
      // lon1's disk fills; JetStream's R3 streams keep their quorum on fra1 and ams3.
      const node = lon
      const disk = nodeDisk(node)
      const usage = () => {
        const fs = statfsSync(disk.mountpoint)
        const size = fs.blocks * fs.bsize
        return { size, avail: fs.bavail * fs.bsize, used: (size - fs.bavail * fs.bsize) / size }
      }
      const { size } = usage()
      const ballast = (n: number) => join(disk.mountpoint, `ballast-${n}`)
      const logging = stackLogging()
      const maxSize = Number.parseInt(logging.options['max-size']!, 10) * 1024 * 1024
      const capBytes = maxSize * Number(logging.options['max-file'])
      const operatorWebhookId = /webhooks\/(\d+)\//.exec(standIns.discord.operatorWebhookUrl)![1]!
      /** The DiskSpaceLow messages about this node that reached the operator's channel since `since`. */
      const diskAlerts = async (since: number) =>
        (await recordedCalls(outside.discord.url)).filter(
          (c) =>
            c.webhookId === operatorWebhookId &&
            c.at >= since &&
            c.status < 300 &&
            embedTitles(c).some(
              (t) => t.includes('FIRING') && t.includes('DiskSpaceLow') && t.includes(node.dc)
            )
        )
      const natsContainer = () =>
        docker(node.dockerHost, ['ps', '-q', '--filter', `name=vtta_nats-${node.dc}`]).trim()
      /** nats-<dc> answers with JetStream enabled (the stack's health check). */
      const jetStreamOn = () => {
        const id = natsContainer()
        return (
          id !== '' &&
          dockerSucceeds(node.dockerHost, [
            'exec',
            id,
            'wget',
            '-q',
            '-O',
            '/dev/null',
            'http://127.0.0.1:8222/healthz?js-enabled-only=true',
          ])
        )
      }
      // The operator's stream info, through the other datacenters' servers (the tunnels' NATS port).
      const nc = await connect({
        servers: nodes.filter((n) => n !== node).map((n) => `nats://${n.address}:4222`),
        ignoreClusterUpdates: true,
        timeout: 5_000,
        ...natsUserAuth(
          'operator',
          readFileSync(join(up.swarmDir, 'secrets', 'nats', 'operator.nk'), 'utf8').trim()
        ),
      })
      // No account check at creation: right after the rollback drill the meta leader may be moving, and every
      // request below is retried until it answers.
      const jsm = await jetstreamManager(nc, { checkAPI: false })
      /** The R3 streams without a replica on this node, and whether every replica is current with lag 0. */
      const replicaState = async () => {
        const streams = (await jsm.streams.list().next()).filter((st) => st.config.num_replicas === 3)
        const missing: string[] = []
        let current = streams.length > 0
        for (const st of streams) {
          const info = await jsm.streams.info(st.config.name)
          const replicas = info.cluster?.replicas ?? []
          if (![info.cluster?.leader, ...replicas.map((r) => r.name)].includes(`nats-${node.dc}`))
            missing.push(st.config.name)
          if (!replicas.every((r) => r.current && (r.lag ?? 0) === 0)) current = false
        }
        return { missing, current }
      }
      const replicasCaughtUp = async () => {
        const state = await replicaState()
        return state.current && state.missing.length === 0
      }
      // Settled after the earlier drills: every replica current before the disk fills.
      const settleDeadline = Date.now() + 120_000
      while (!(await replicasCaughtUp().catch(() => false)) && Date.now() < settleDeadline) await sleep(2_000)
      expect(await replicasCaughtUp().catch(() => false)).toBe(true)
      expect(jetStreamOn()).toBe(true)

      const load = underLoad(target)
      await sleep(5_000)
      // A service flooding its logs on that node, with the stack's log options: they cannot fill the disk.
      docker(manager.dockerHost, [
        'service',
        'create',
        '--name',
        'vtta_disk-flood',
        '--detach',
        '--constraint',
        `node.labels.dc == ${node.dc}`,
        '--log-driver',
        logging.driver,
        ...Object.entries(logging.options).flatMap(([k, v]) => ['--log-opt', `${k}=${v}`]),
        '--no-healthcheck',
        '--entrypoint',
        'node',
        `${outside.imageOrigin.host.split(':')[0]}:5000/vtta/backend:${ctx.env!.VTTA_VERSION}`,
        '-e',
        "const c=require('crypto');(function w(){while(process.stdout.write(c.randomBytes(3072).toString('base64')+'\\n'));process.stdout.once('drain',w)})()",
      ])
      let logs = { bytes: 0, files: 0, largest: 0 }
      const watchLogs = () => {
        const now = serviceLogFiles(node, 'vtta_disk-flood')
        if (now.bytes > logs.bytes) logs = now
      }

      // Stored data: a ballast file past 80 % at once, then growing as a disk that fills in 4 minutes.
      const started = Date.now()
      const fillSeconds = 240
      const grow = (file: string, bytes: number) => run('fallocate', ['-l', String(bytes), file])
      const before = usage()
      const toThreshold = Math.ceil((0.805 - before.used) * size)
      grow(ballast(1), Math.max(toThreshold, 4096))
      const crossed = Date.now()
      expect(usage().used).toBeGreaterThan(0.8)
      const ratePerSecond = (usage().avail - 0) / fillSeconds
      let alertAt = 0
      let usedAtAlert = 0
      let grown = 0
      while (alertAt === 0) {
        await sleep(2_000)
        watchLogs()
        if ((await diskAlerts(crossed)).length > 0) {
          alertAt = Date.now()
          usedAtAlert = usage().used
          break
        }
        // Grows by what the rate adds since the crossing, leaving the last bytes: full is the deadline.
        const due = Math.floor(ratePerSecond * ((Date.now() - crossed) / 1000))
        const room = usage().avail - 1024 * 1024
        if (room <= 0 || Date.now() - crossed > fillSeconds * 1000) break
        if (due > grown) {
          const step = Math.min(due - grown, room)
          grow(ballast(2), grown + step)
          grown += step
        }
      }
      const alertSeconds = (alertAt - crossed) / 1000
      expect(alertAt, 'DiskSpaceLow reached the operator before the disk was full').toBeGreaterThan(0)
      expect(usedAtAlert).toBeLessThan(1)

      // Then full: what the ballast cannot take, zeros written until the filesystem refuses. The
      // servers on the node keep writing and replacing their small files meanwhile, which can free a
      // few blocks just after (49152 bytes in one run): those are taken too.
      attempt('fallocate', ['-l', String(usage().avail), ballast(3)])
      attempt('dd', ['if=/dev/zero', `of=${ballast(4)}`, 'bs=1M'])
      for (let round = 0; round < 5 && (round === 0 || usage().avail > 0); round++)
        attempt('dd', ['if=/dev/zero', `of=${ballast(5)}`, 'bs=4k', 'oflag=append', 'conv=notrunc'])
      const full = Date.now()
      expect(usage().avail).toBe(0)
      // Releases go on. What nats-server 2.9.10 does (seen on this swarm): lon1's replicas stop storing (not
      // current, their lag grows) while the leaders on fra1 and ams3 keep the quorum; once a write of its own
      // fails it disables JetStream, the health check (js-enabled-only) fails and Swarm restarts the task.
      const natsTask = natsContainer()
      let stoppedMs = -1
      let disabledWhileFull = false
      while (Date.now() - full < 90_000) {
        await sleep(2_000)
        watchLogs()
        if (!jetStreamOn()) disabledWhileFull = true
        if (stoppedMs < 0) {
          const state = await replicaState().catch(() => null)
          if (disabledWhileFull || (state && (!state.current || state.missing.length > 0)))
            stoppedMs = Date.now() - full
        }
      }
      docker(manager.dockerHost, ['service', 'rm', 'vtta_disk-flood'])
      expect(stoppedMs, `nats-${node.dc} stopped storing while its disk was full`).toBeGreaterThanOrEqual(0)

      // Space again: the node's server comes back (restarted by Swarm if it disabled JetStream) and its
      // replicas catch up by themselves.
      for (let n = 1; n <= 5; n++) rmSync(ballast(n), { force: true })
      const freed = Date.now()
      let caughtUp = false
      while (!caughtUp && Date.now() - freed < 240_000) {
        caughtUp = jetStreamOn() && (await replicasCaughtUp().catch(() => false))
        if (!caughtUp) await sleep(2_000)
      }
      const restarted = natsContainer() !== natsTask
      // nats-server 2.9 takes a server that disabled JetStream out of the meta group, and each stream it held
      // keeps two peers (no other datacenter to move to). A stream update with its own configuration has the
      // meta leader place the missing replica again (the runbook's step after a full disk): done here only if
      // the replicas did not come back by themselves, and said in the figures.
      const readded: string[] = []
      if (!caughtUp) {
        // The meta group may still be settling after the node's return ("temporarily unavailable").
        let state: Awaited<ReturnType<typeof replicaState>> | undefined
        for (const deadline = Date.now() + 60_000; !state; await sleep(2_000)) {
          state = await replicaState().catch((err: unknown) => {
            if (Date.now() > deadline) throw err
            return undefined
          })
        }
        for (const name of state.missing) {
          const info = await jsm.streams.info(name)
          await jsm.streams.update(name, info.config)
          readded.push(name)
        }
        while (!caughtUp && Date.now() - freed < 480_000) {
          caughtUp = jetStreamOn() && (await replicasCaughtUp().catch(() => false))
          if (!caughtUp) await sleep(2_000)
        }
      }
      const catchUpSeconds = (Date.now() - freed) / 1000
      await nc.close()
      const f = await load.stop()
      const lost = f.accepted.length - f.announcedOnce - f.announcedTwice
      figures.push(
        `full disk on ${node.dc} (${(size / 2 ** 30).toFixed(1)} GiB ext4): threshold (80 %) -> DiskSpaceLow at the operator's Discord ${alertSeconds.toFixed(0)} s (disk ${(usedAtAlert * 100).toFixed(1)} % used, filling to full in ${fillSeconds} s); full -> nats-${node.dc} stopped storing ${(stoppedMs / 1000).toFixed(0)} s (JetStream disabled while full: ${disabledWhileFull ? 'yes' : 'no'}; task restarted by Swarm: ${restarted ? 'yes' : 'no'}); log flood kept ${(logs.bytes / 1e6).toFixed(1)} MB in ${logs.files} files (cap ${(capBytes / 1e6).toFixed(0)} MB); releases accepted during the drill ${f.accepted.length}, lost ${lost}${f.unannounced.length ? ` (${f.unannounced.map((u) => `${u.version} accepted ${((u.acceptedAt - full) / 1000).toFixed(0)} s after full`).join(', ')})` : ''}, announced twice ${f.announcedTwice}; space freed -> replicas current, lag 0, in ${catchUpSeconds.toFixed(0)} s (${readded.length === 0 ? 'by themselves' : `after a stream update re-placed the replica of ${readded.join(', ')}`}); drill ${((Date.now() - started) / 1000).toFixed(0)} s, full for ${((freed - full) / 1000).toFixed(0)} s`
      )
      expect(logs.files).toBeGreaterThan(0)
      expect(logs.largest).toBeLessThanOrEqual(maxSize)
      expect(logs.bytes).toBeLessThanOrEqual(capBytes)
      expect(caughtUp, `the replicas on ${node.dc} caught up`).toBe(true)
      expect(f.accepted.length).toBeGreaterThan(0)
      expect(lost).toBe(0)
      expect(f.announcedTwice).toBe(0)
      expect(f.announcedOnce).toBe(f.accepted.length)
    }
  )
})
