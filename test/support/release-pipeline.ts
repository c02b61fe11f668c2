/**
 * The release pipeline for a test: the GitHub and Discord stand-ins, a stand-in for the edge's side
 * of it (records cache purges, forwards /modules and /api to the web service so the URLs written
 * into manifests work; on the stand-ins' HTTP helper), real release, notifier and web service
 * processes on given NATS servers, and a NATS client that publishes deliveries exactly as the edge
 * does.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from '@nats-io/transport-node'
import { z } from 'zod'
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core'
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
} from '@nats-io/jetstream'
import {
  deliveryMsgId,
  githubDeliverySubject,
  githubHeaders,
  packagedEventSchema,
  rejectedEventSchema,
  releaseEventsStream,
  type PackagedEvent,
  type RejectedEvent,
} from '#shared/releases.ts'
import {
  fixtureModules,
  startGitHubStandIn,
  type Delivery,
  type GitHubStandIn,
} from '../../local/stand-ins/github/index.ts'
import { openRegistryStorage } from '../../backend/registry/buckets.ts'
import { RegistryWriter } from '../../backend/registry/writer.ts'
import { startDiscordStandIn, type DiscordStandIn } from '../../local/stand-ins/discord.ts'
import { readBody, readJson, Router, serveHttp } from '../../local/stand-ins/http.ts'
import { startService, type TestService } from './backend-service.ts'
import { stopProcess } from '../../local/processes.ts'
import { natsAuth } from './nats-credentials.ts'
import { originProofHeaders } from './origin-proof.ts'

const fixturesDir = join(import.meta.dirname, '..', 'fixtures')
/** What the release service bears for the edge's cache purge (the edge's PURGE_TOKEN). */
export const PURGE_TOKEN = 'test-purge-token-0123456789abcdefghijklmnopqrstuvwxyz'

export interface FakeEdge {
  url: string
  purges: Array<{ authorization: string | undefined; paths: string[] }>
  setOrigin(url: string): void
  stop(): Promise<void>
}

/** What the edge is to the backend here: purge endpoint, and /modules + /api forwarded to a web service. */
export async function startFakeEdge(): Promise<FakeEdge> {
  let origin = ''
  const purges: FakeEdge['purges'] = []
  const router = new Router(() => ({}))
  router.post('/admin/cache/purge', async ({ req, res }) => {
    const { paths } = z.object({ paths: z.array(z.string()) }).parse(await readJson(req))
    purges.push({ authorization: req.headers.authorization, paths })
    res.writeHead(204).end()
  })
  router.all('/:part(modules|api)/*', async ({ req, res }, next) => {
    if (!origin) return next()
    await readBody(req)
    const upstream = await fetch(`${origin}${req.url}`, {
      headers: {
        ...originProofHeaders(),
        ...(req.headers['if-none-match'] ? { 'if-none-match': String(req.headers['if-none-match']) } : {}),
      },
    })
    const headers: Record<string, string> = {}
    for (const h of ['content-type', 'etag', 'cache-control', 'content-length', 'content-disposition'])
      if (upstream.headers.has(h)) headers[h] = upstream.headers.get(h)!
    res.writeHead(upstream.status, headers)
    res.end(Buffer.from(await upstream.arrayBuffer()))
  })
  const http = await serveHttp((req, res) =>
    router.handle(req, res, async ({ req, res }) => {
      await readBody(req)
      res.writeHead(404).end()
    })
  )
  return {
    url: http.url,
    purges,
    setOrigin: (url) => void (origin = url),
    stop: () => http.close(),
  }
}

/** A signed delivery fixture exactly as saved (headers + body bytes). */
export function deliveryFixture(name: string): { headers: Record<string, string>; body: string } {
  const dir = join(fixturesDir, 'github', 'deliveries', name)
  return {
    headers: JSON.parse(readFileSync(join(dir, 'headers.json'), 'utf8')) as Record<string, string>,
    body: readFileSync(join(dir, 'body.json'), 'utf8'),
  }
}

/** Publishes a delivery to JetStream as the edge does: raw body, GitHub's ids in headers, Nats-Msg-Id = sha256(body). */
export async function publishAsEdge(
  js: JetStreamClient,
  d: { headers: Record<string, string>; body: string | Uint8Array }
): Promise<PubAck> {
  const header = (name: string) =>
    Object.entries(d.headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1] ?? ''
  let action = ''
  try {
    const payload: unknown = JSON.parse(typeof d.body === 'string' ? d.body : Buffer.from(d.body).toString())
    action = z.object({ action: z.string() }).safeParse(payload).data?.action ?? ''
  } catch {
    // not JSON: the release service rejects it
  }
  const bytes = typeof d.body === 'string' ? Buffer.from(d.body) : d.body
  const h = natsHeaders()
  h.set(githubHeaders.event, header('X-GitHub-Event'))
  h.set(githubHeaders.delivery, header('X-GitHub-Delivery'))
  h.set(githubHeaders.hookId, header('X-GitHub-Hook-ID'))
  return js.publish(githubDeliverySubject(action), bytes, {
    // Exactly the edge's message id (the body's SHA-256).
    msgID: await deliveryMsgId(bytes),
    headers: h,
  })
}

/** Every message of a stream subject, decoded, in stream order (read with an ordered consumer). */
async function readStream(js: JetStreamClient, stream: string, subject: string): Promise<unknown[]> {
  const consumer = await js.consumers.get(stream, { filter_subjects: subject })
  const pending = (await consumer.info()).num_pending
  const out: unknown[] = []
  if (pending === 0) return out
  const messages = await consumer.fetch({ max_messages: pending, expires: 5_000 })
  for await (const m of messages) {
    out.push(m.json())
    if (m.info.pending === 0) break
  }
  return out
}

/** A release service's GitHub App settings for this stand-in, and small JetStream bounds for tests. */
export const releaseServiceAppEnv = (gh: GitHubStandIn) => ({
  GITHUB_API_URL: gh.url,
  GITHUB_APP_ID: String(gh.app.id),
  GITHUB_APP_PRIVATE_KEY: gh.app.privateKey,
  // Reserved up front by JetStream: must fit the test server's max_file_store.
  REGISTRY_ZIPS_MAX_BYTES: String(256 * 1024 * 1024),
})

/** The operator's enrollment of the repositories the tests publish from (by GitHub's id). */
export async function enrollRepositories(
  nc: NatsConnection,
  repositories: Array<{ id: number; name: string }>
): Promise<RegistryWriter> {
  for (let attempt = 0; ; attempt++) {
    const storage = await openRegistryStorage(nc)
    if (storage) {
      const writer = new RegistryWriter(storage)
      for (const r of repositories) await writer.enroll(r, 'test')
      return writer
    }
    if (attempt > 100) throw new Error('the registry was never created')
    await sleep(100)
  }
}

/** The fixture modules' repositories and the octokit example's (Codertocat/Hello-World). */
export const fixtureRepositories = () =>
  Object.values(fixtureModules).map((m) => ({ id: m.repositoryId, name: `${m.owner}/${m.repo}` }))

export interface PipelineOptions {
  /** NATS URL of each datacenter; services are spread over them in order. */
  natsUrls: string[]
  replicas: number
  releases?: number
  notifiers?: number
  web?: boolean
  /** More environment for every release service (quotas, …). */
  releasesEnv?: Record<string, string>
  /** More environment for every release and notifier service (the JetStream layout, …). */
  env?: Record<string, string>
}

export interface Pipeline {
  gh: GitHubStandIn
  discord: DiscordStandIn
  edge: FakeEdge
  web: TestService | undefined
  releases: TestService[]
  nc: NatsConnection
  js: JetStreamClient
  jsm: JetStreamManager
  startRelease(i: number): Promise<TestService>
  /** The registry, as the operator reaches it (enrollment, transfer). */
  registry: RegistryWriter
  /**
   * Publishes as the edge does. A stand-in delivery's repository is enrolled first (the operator's
   * part), unless `enroll: false`: the fixture repositories are enrolled from the start.
   */
  publish(
    d: Delivery | { headers: Record<string, string>; body: string | Uint8Array },
    o?: { enroll?: boolean }
  ): Promise<PubAck>
  packaged(): Promise<PackagedEvent[]>
  rejected(): Promise<RejectedEvent[]>
  /** Announcements the Discord stand-in accepted. */
  announcements(): ReturnType<DiscordStandIn['calls']>
  api(path: string, init?: RequestInit): Promise<Response>
  stop(): Promise<void>
}

const dcs = ['fra', 'ams', 'lon']

export async function startPipeline(o: PipelineOptions): Promise<Pipeline> {
  const [gh, discord, edge] = await Promise.all([
    startGitHubStandIn(),
    startDiscordStandIn(),
    startFakeEdge(),
  ])
  const at = (i: number) => ({ DC: dcs[i % dcs.length]!, NATS_URL: o.natsUrls[i % o.natsUrls.length]! })
  const common = {
    JETSTREAM_REPLICAS: String(o.replicas),
    ACK_WAIT_MS: '3000',
    MAX_DELIVER: '4',
    LOG_LEVEL: 'info',
    ...o.env,
  }
  const releasesEnv = (i: number) => ({
    ...at(i),
    ...common,
    PUBLIC_BASE_URL: edge.url,
    ...releaseServiceAppEnv(gh),
    RELEASE_ASSET_HOSTS: new URL(gh.url).host,
    PURGE_TOKEN,
    ASSET_TIMEOUT_MS: '15000',
    ...o.releasesEnv,
  })
  const started: TestService[] = []
  const startRelease = async (i: number) => {
    const s = await startService('releases', releasesEnv(i))
    started.push(s)
    return s
  }
  const nc = await connect({ servers: o.natsUrls, ...natsAuth() })
  const stopAll = async () => {
    await nc.close()
    await Promise.all(started.map((s) => stopProcess(s.proc)))
    await Promise.all([gh.stop(), discord.stop(), edge.stop()])
  }
  try {
    // The first release service creates the streams and buckets; the rest start alongside.
    const releases = [await startRelease(0)]
    const [more, , web] = await Promise.all([
      Promise.all(Array.from({ length: (o.releases ?? 1) - 1 }, (_, i) => startRelease(i + 1))),
      Promise.all(
        Array.from({ length: o.notifiers ?? 1 }, async (_, i) => {
          const s = await startService('notifier', {
            ...at(i),
            ...common,
            DISCORD_WEBHOOK_URL: discord.webhookUrl,
            // Rejections go to the operator's webhook: another webhook id on the same stand-in.
            DISCORD_OPERATOR_WEBHOOK_URL: discord.webhookUrl.replace(
              /\/webhooks\/\d+\//,
              '/webhooks/223456789012345678/'
            ),
          })
          started.push(s)
          return s
        })
      ),
      o.web === false
        ? Promise.resolve(undefined)
        : startService('web', { ...at(0), LOG_LEVEL: 'warn' }).then((s) => (started.push(s), s)),
    ])
    releases.push(...more)
    if (web) edge.setOrigin(web.url)
    const js = jetstream(nc)
    const jsm = await jetstreamManager(nc)
    const registry = await enrollRepositories(nc, fixtureRepositories())
    return {
      gh,
      discord,
      edge,
      web,
      releases,
      nc,
      js,
      jsm,
      startRelease,
      registry,
      async publish(d, { enroll = true } = {}) {
        if (enroll && 'spec' in d)
          await registry.enroll({ id: d.spec.repositoryId, name: `${d.spec.owner}/${d.spec.repo}` }, 'test')
        return publishAsEdge(js, d)
      },
      packaged: async () =>
        (await readStream(js, releaseEventsStream.name, releaseEventsStream.packaged)).map((e) =>
          packagedEventSchema.parse(e)
        ),
      rejected: async () =>
        (await readStream(js, releaseEventsStream.name, releaseEventsStream.rejected)).map((e) =>
          rejectedEventSchema.parse(e)
        ),
      announcements: () => discord.calls().filter((c) => c.status >= 200 && c.status < 300),
      // As the edge asks: with its proof.
      api: (path, init) =>
        fetch(`${web!.url}${path}`, {
          ...init,
          headers: { ...originProofHeaders(), ...(init?.headers as Record<string, string> | undefined) },
        }),
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}
