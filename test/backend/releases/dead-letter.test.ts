/**
 * Dead letters of the release service: a delivery that keeps failing for our (or GitHub's) reasons
 * is retried with backoff and then copied to DEADLETTER by the worker; one whose workers keep dying
 * is copied there from JetStream's max-deliveries advisory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { startService, type TestService } from '../../support/backend-service.ts'
import { killProcess } from '../../../local/processes.ts'
import {
  PURGE_TOKEN,
  enrollRepositories,
  fixtureRepositories,
  publishAsEdge,
  releaseServiceAppEnv,
  startFakeEdge,
  type FakeEdge,
} from '../../support/release-pipeline.ts'
import { freePort } from '../../../local/free-port.ts'
import { startGitHubStandIn, type GitHubStandIn } from '../../../local/stand-ins/github/index.ts'
import { deadLetterHeaders, deadLetterStream } from '#shared/releases.ts'
import { natsAuth } from '../../support/nats-credentials.ts'

let nats: TestNatsServer
let gh: GitHubStandIn
let edge: FakeEdge
let nc: NatsConnection
let jsm: JetStreamManager
/** A loopback port nothing listens on: downloads from it can only fail, transiently. */
let closedPort: number
const services: TestService[] = []

const start = async () => {
  const s = await startService('releases', {
    DC: 'fra',
    NATS_URL: nats.url,
    JETSTREAM_REPLICAS: '1',
    PUBLIC_BASE_URL: edge.url,
    ...releaseServiceAppEnv(gh),
    RELEASE_ASSET_HOSTS: `${new URL(gh.url).host},127.0.0.1:${closedPort}`,
    PURGE_TOKEN,
    ACK_WAIT_MS: '1000',
    MAX_DELIVER: '2',
  })
  services.push(s)
  return s
}
const kill = (s: TestService) => killProcess(s.proc)

beforeAll(async () => {
  nats = await startNatsServer('dead-letters')
  closedPort = await freePort()
  ;[gh, edge] = await Promise.all([startGitHubStandIn(), startFakeEdge()])
  nc = await connect({ servers: nats.url, ...natsAuth() })
  jsm = await jetstreamManager(nc)
})
afterAll(async () => {
  await nc?.close()
  await Promise.all(services.map((s) => s.stop()))
  await Promise.all([gh?.stop(), edge?.stop()])
  await nats?.dispose()
})

async function deadLetter(delivery: string) {
  const info = await jsm.streams.info(deadLetterStream.name).catch(() => null)
  for (let seq = info?.state.first_seq ?? 1; info && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(deadLetterStream.name, { seq }).catch(() => null)
    if (m?.header.get('GitHub-Delivery') === delivery) return m
  }
  return null
}

describe('release service dead letters', () => {
  it('retries a transient failure with backoff, then dead-letters it on the last delivery', async () => {
    const service = await start()
    await enrollRepositories(nc, fixtureRepositories())
    try {
      const d = await gh.delivery('item-piles', {
        version: '1.0.0',
        assetBaseUrl: `http://127.0.0.1:${closedPort}`,
      })
      const published = Date.now()
      await publishAsEdge(jetstream(nc), d)
      await expect.poll(() => deadLetter(d.deliveryId), { timeout: 10_000, interval: 100 }).not.toBeNull()
      const m = (await deadLetter(d.deliveryId))!
      expect(Date.now() - published).toBeGreaterThanOrEqual(1_000) // the retry waited its backoff
      expect(m.subject).toBe(deadLetterStream.subject('releases'))
      expect(m.header.get(deadLetterHeaders.reason)).toMatch(
        /^gave up after 2 deliveries; last error: asset module\.json: .*ECONNREFUSED/
      )
      expect(m.header.get(deadLetterHeaders.deliveries)).toBe('2')
      expect(m.header.get(deadLetterHeaders.stream)).toBe('GITHUB')
      expect(m.string()).toBe(d.body)
      const logs = await service.logs()
      expect(logs.filter((l) => l.msg === 'will retry')).toHaveLength(1)
      expect(logs.find((l) => l.msg === 'message dead-lettered')).toMatchObject({ level: 'error' })
      expect(await (await fetch(`${service.internalUrl}/metrics`)).text()).toMatch(
        /dead_letters_total\{consumer="releases",path="worker"[^}]*\} 1/
      )
    } finally {
      await kill(service)
    }
  })

  it('dead-letters a delivery whose workers die on every attempt (max-deliveries advisory)', async () => {
    const d = await gh.delivery('item-piles', { version: '2.0.0', slowZipMs: 60_000, slowOnce: false })
    const zipPath = `/_objects/${d.spec.releaseId * 10 + 2}`
    const zipRequests = () => gh.requests().filter((r) => r.path === zipPath).length
    await publishAsEdge(jetstream(nc), d)
    for (let attempt = 1; attempt <= 2; attempt++) {
      const worker = await start()
      await expect
        .poll(zipRequests, { timeout: 10_000, interval: 50 })
        .toBe(attempt)
        .catch(async (err: unknown) => {
          console.log((await worker.logs()).map((l) => JSON.stringify(l)).join('\n'))
          throw err
        })
      await kill(worker)
    }
    const survivor = await start()
    await expect.poll(() => deadLetter(d.deliveryId), { timeout: 10_000, interval: 100 }).not.toBeNull()
    const m = (await deadLetter(d.deliveryId))!
    expect(m.header.get(deadLetterHeaders.reason)).toMatch(/no worker finished it in 2 deliveries/)
    expect(zipRequests()).toBe(2)
    expect(await (await fetch(`${survivor.internalUrl}/metrics`)).text()).toMatch(
      /dead_letters_total\{consumer="releases",path="advisory"[^}]*\} 1/
    )
  })
})
