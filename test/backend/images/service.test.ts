/**
 * The image service as a service: replies larger than NATS max_payload, the origin cache, the
 * concurrency bound with its fast `busy` answer, metrics, configuration errors and graceful shutdown.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import sharp from 'sharp'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { startService, type TestService } from '../../support/backend-service.ts'
import { startOriginServer, type OriginServer } from '../../support/origin-server.ts'
import * as fixtures from '../../support/image-fixtures.ts'
import { etagOfDigest } from '#shared/images.ts'
import { subjects } from '#shared/subjects.ts'
import { requestTransform } from './transform-client.ts'
import { natsAuth } from '../../support/nats-credentials.ts'

let nats: TestNatsServer
let origin: OriginServer
let service: TestService
let nc: NatsConnection

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
/** The ETag the edge would compute from the bytes (edge/images/cache.ts strongEtag). */
const etagOf = (bytes: Buffer) => etagOfDigest(createHash('sha256').update(bytes).digest())

beforeAll(async () => {
  nats = await startNatsServer('images-service')
  origin = await startOriginServer({
    'photo.jpg': { body: await fixtures.photoLikeJpeg(1200, 900), contentType: 'image/jpeg' },
    'noise.jpg': {
      body: await sharp(fixtures.noisePixels(2000, 1500), {
        raw: { width: 2000, height: 1500, channels: 3 },
      })
        .jpeg({ quality: 95 })
        .toBuffer(),
      contentType: 'image/jpeg',
    },
  })
  service = await startService('images', {
    DC: 'fra',
    REGION: 'eu',
    NATS_URL: nats.url,
    IMAGE_SOURCE_HOSTS: origin.origin,
  })
  nc = await connect({ servers: nats.url, ...natsAuth() })
})

afterAll(async () => {
  await nc?.close()
  await service?.stop()
  await origin?.close()
  await nats?.dispose()
})

describe('image service', () => {
  it('delivers an answer larger than max_payload whole, in several chunks', async () => {
    const maxPayload = nc.info!.max_payload
    const answer = await requestTransform(nc, {
      source: origin.fileUrl('noise.jpg'),
      options: { format: 'png' },
    })
    expect(answer.status).toBe(200)
    expect(answer.body.length).toBeGreaterThan(maxPayload)
    expect(answer.chunks).toBe(Math.ceil(answer.body.length / (maxPayload - 4096)))
    // Lossless PNG of the decoded source: every pixel arrived.
    const source = await sharp(await (await fetch(origin.fileUrl('noise.jpg'))).arrayBuffer())
      .raw()
      .toBuffer()
    expect(sha(await sharp(answer.body).raw().toBuffer())).toBe(sha(source))
    // One ETag for the whole body, on every chunk (the client checks they agree).
    expect(answer.etag).toBe(etagOf(answer.body))
  })

  it("answers its region's transforms too (what the edge asks with several regions), and no other region's", async () => {
    const answer = await requestTransform(
      nc,
      { source: origin.fileUrl('photo.jpg'), options: { width: 64 } },
      { subject: subjects.imageTransformInRegion('eu') }
    )
    expect(answer.status).toBe(200)
    expect((await sharp(answer.body).metadata()).width).toBe(64)
    await expect(
      requestTransform(
        nc,
        { source: origin.fileUrl('photo.jpg') },
        { subject: subjects.imageTransformInRegion('us') }
      )
    ).rejects.toThrow(/no responders/i)
  })

  it("sends an error's ETag with its JSON body", async () => {
    const answer = await requestTransform(nc, { source: origin.fileUrl('none.jpg') })
    expect(answer.error?.code).toBe('source_not_found')
    expect(answer.etag).toBe(etagOf(answer.body))
  })

  it('fetches a source once for several sizes and formats (origin cache)', async () => {
    origin.add('once.jpg', { body: await fixtures.photoLikeJpeg(600, 400, 2), contentType: 'image/jpeg' })
    for (const [width, format] of [
      [100, 'webp'],
      [200, 'jpeg'],
      [300, 'avif'],
    ] as const) {
      const answer = await requestTransform(nc, {
        source: origin.fileUrl('once.jpg'),
        options: { width, format },
      })
      expect(answer.width).toBe(width)
    }
    expect(origin.hits('/files/once.jpg')).toBe(1)
  })

  it('shares one fetch between concurrent requests for the same source', async () => {
    origin.add('shared.jpg', { body: await fixtures.photoLikeJpeg(600, 400, 3), contentType: 'image/jpeg' })
    const source = `${origin.url}/slow/300/files/shared.jpg`
    const answers = await Promise.all(
      [100, 150, 200, 250, 300].map((width) => requestTransform(nc, { source, options: { width } }))
    )
    expect(answers.map((a) => a.width)).toEqual([100, 150, 200, 250, 300])
    expect(origin.hits('/slow/300/files/shared.jpg')).toBe(1)
  })

  it('exposes its metrics', async () => {
    const text = await (await fetch(`${service.internalUrl}/metrics`)).text()
    expect(text).toMatch(/images_transforms_total\{outcome="ok",service="images",dc="fra"\} \d+/)
    expect(text).toMatch(/images_origin_cache_requests_total\{result="hit"[^}]*\} [1-9]/)
    expect(text).toMatch(/images_origin_cache_requests_total\{result="collapsed"[^}]*\} [1-9]/)
    expect(text).toMatch(/images_origin_fetched_bytes_total\{[^}]*\} [1-9]/)
    expect(text).toMatch(/images_origin_cache_bytes\{[^}]*\} [1-9]/)
    expect(text).toMatch(/images_duration_seconds_bucket\{le="0.1",[^}]*stage="transform"/)
    expect(text).toMatch(/images_queue_depth\{[^}]*\} 0/)
    expect(text).toMatch(/images_transforms_in_flight\{[^}]*\} 0/)
  })

  it('stops with exit code 78 naming a bad allowlist', async () => {
    const bad = await startService(
      'images',
      { DC: 'fra', NATS_URL: nats.url, IMAGE_SOURCE_HOSTS: 'localhost:8080' },
      { waitReady: false }
    )
    expect(await bad.proc.exited).toBe('exited with code 78')
    const fatal = (await bad.logs()).find((l) => l.level === 'fatal')
    expect(String(fatal?.msg)).toMatch(/IMAGE_SOURCE_HOSTS.*port may only follow an IP address/)
  })
})

describe('image service under load and shutdown', () => {
  let bounded: TestService

  beforeAll(async () => {
    // Another datacenter's subject, so this instance alone answers it.
    bounded = await startService('images', {
      DC: 'ams',
      NATS_URL: nats.url,
      IMAGE_SOURCE_HOSTS: origin.origin,
      IMAGE_CONCURRENCY: '1',
      IMAGE_QUEUE_LIMIT: '1',
    })
  })
  afterAll(async () => {
    await bounded?.stop()
  })

  it('answers busy at once past its concurrency and queue, instead of queueing', async () => {
    const slow = (i: number) => `${origin.url}/slow/800/files/photo.jpg?burst=${i}`
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        requestTransform(nc, { source: slow(i), options: { width: 100 } }, { dc: 'ams' })
      )
    )
    const ok = answers.filter((a) => a.status === 200)
    const busy = answers.filter((a) => a.error?.code === 'busy')
    expect(ok).toHaveLength(2)
    expect(busy).toHaveLength(4)
    expect(busy.every((a) => a.status === 503)).toBe(true)
    // The refusals came without waiting for the slow origin.
    expect(Math.max(...busy.map((a) => a.ms))).toBeLessThan(500)
    expect(Math.min(...ok.map((a) => a.ms))).toBeGreaterThan(700)
  })

  it('finishes a transform in flight on SIGTERM, then exits 0', async () => {
    const inFlight = requestTransform(
      nc,
      { source: `${origin.url}/slow/1500/files/photo.jpg?shutdown`, options: { width: 300 } },
      { dc: 'ams' }
    )
    await sleep(300)
    process.kill(bounded.proc.pid, 'SIGTERM')
    const answer = await inFlight
    expect(answer.status).toBe(200)
    expect((await sharp(answer.body).metadata()).width).toBe(300)
    expect(await bounded.proc.exited).toBe('exited with code 0')
  })
})
