/**
 * The image service cannot be turned into a weapon (issue #11, H1): output area and upscaling caps,
 * animation caps, and the edge's deadline. Real nats-server, the real service process, requests as
 * the edge (or a hostile NATS client) sends them.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import sharp from 'sharp'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { MAX_OUTPUT_PIXELS } from '#shared/images.ts'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { startService, type TestService } from '../../support/backend-service.ts'
import { startOriginServer, type OriginServer } from '../../support/origin-server.ts'
import * as fixtures from '../../support/image-fixtures.ts'
import { requestTransform } from './transform-client.ts'
import { natsAuth } from '../../support/nats-credentials.ts'

let nats: TestNatsServer
let origin: OriginServer
let service: TestService
let nc: NatsConnection

const MiB = 1024 * 1024

/** Peak resident memory of a process (VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024
}

const metric = async (name: string, labels: string) => {
  const text = await (await fetch(`${service.internalUrl}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels))
  return line ? Number(line.split(' ').at(-1)) : 0
}

beforeAll(async () => {
  nats = await startNatsServer('images-amplification')
  origin = await startOriginServer({
    'icon.png': {
      body: await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } })
        .png()
        .toBuffer(),
      contentType: 'image/png',
    },
    'big.jpg': {
      body: await sharp({ create: { width: 5000, height: 4000, channels: 3, background: '#808080' } })
        .jpeg()
        .toBuffer(),
      contentType: 'image/jpeg',
    },
    'anim.gif': { body: await fixtures.animatedGif(), contentType: 'image/gif' },
    'frames101.gif': { body: await fixtures.animatedGif(101, 16, 16), contentType: 'image/gif' },
    'frames101.webp': { body: await fixtures.animatedWebp(101, 16, 16), contentType: 'image/webp' },
    'long.gif': { body: await fixtures.animatedGif(10, 16, 16, 7_000), contentType: 'image/gif' },
  })
  service = await startService('images', {
    DC: 'fra',
    NATS_URL: nats.url,
    IMAGE_SOURCE_HOSTS: origin.origin,
    // One transform, two source slots: the deadline tests fill them with slow sources.
    IMAGE_CONCURRENCY: '1',
    IMAGE_QUEUE_LIMIT: '8',
  })
  // The requester is the edge, with the edge's own NATS user.
  nc = await connect({ servers: nats.url, ...natsAuth('edge') })
})

afterAll(async () => {
  await nc?.close()
  await service?.stop()
  await origin?.close()
  await nats?.dispose()
})

describe('output area and upscaling', () => {
  it('refuses the review amplification box sent straight over NATS (the edge refuses it too)', async () => {
    const answer = await requestTransform(nc, {
      source: origin.fileUrl('icon.png'),
      options: { width: 8192, height: 8192, fit: 'pad', blur: 100.1 },
    })
    expect(answer.status).toBe(400)
    expect(answer.error?.code).toBe('invalid_request')
  })

  it('keeps a padded enlargement with one side within 16 MP, with memory far under the 1 GiB limit', async () => {
    // The old service made 64 px into 8192x8192 (67 MP, ~360 MiB each): three at once took the 1 GiB task.
    const answers = await Promise.all(
      [8192, 8191, 8190].map((width) =>
        requestTransform(nc, {
          source: origin.fileUrl('icon.png'),
          options: { width, fit: 'pad', blur: 2, format: 'jpeg' },
        })
      )
    )
    for (const answer of answers) {
      expect(answer.status).toBe(200)
      expect(answer.width! * answer.height!).toBeLessThanOrEqual(MAX_OUTPUT_PIXELS)
      expect(answer.width).toBeGreaterThanOrEqual(3990)
    }
    expect(await peakRss(service.proc.pid)).toBeLessThan(600 * MiB)
  })

  it('scales a 20 MP source asked for at its own size down to 16 MP', async () => {
    const answer = await requestTransform(nc, {
      source: origin.fileUrl('big.jpg'),
      options: { format: 'jpeg' },
    })
    expect(answer.status).toBe(200)
    expect(answer.width! * answer.height!).toBeLessThanOrEqual(MAX_OUTPUT_PIXELS)
    expect(answer.width! * answer.height!).toBeGreaterThan(15_900_000)
    expect(answer.width! / answer.height!).toBeCloseTo(5000 / 4000, 2)
  })

  it.each([
    ['contain', { width: 2000, fit: 'contain' as const }],
    ['cover', { width: 2000, height: 1000, fit: 'cover' as const }],
    ['scale-down', { width: 2000, height: 2000 }],
  ])('does not enlarge with %s', async (_fit, options) => {
    const answer = await requestTransform(nc, { source: origin.fileUrl('icon.png'), options })
    expect(answer.status).toBe(200)
    expect(answer.width).toBeLessThanOrEqual(64)
    expect(answer.height).toBeLessThanOrEqual(64)
  })

  it('refuses an animation whose frames together would pass 16 MP', async () => {
    const answer = await requestTransform(nc, {
      source: origin.fileUrl('anim.gif'),
      options: { width: 2000, height: 2000, fit: 'pad' },
    })
    expect(answer.status).toBe(422)
    expect(answer.error?.code).toBe('output_too_large')
  })
})

describe('animation caps', () => {
  it.each(['frames101.gif', 'frames101.webp'])(
    'refuses %s (101 frames) before decoding its frames',
    async (file) => {
      const answer = await requestTransform(nc, { source: origin.fileUrl(file), options: { width: 8 } })
      expect(answer.status).toBe(422)
      expect(answer.error).toEqual({
        code: 'image_too_many_frames',
        message: 'the animation has 101 frames, more than the limit of 100',
      })
    }
  )

  it('refuses an animation longer than a minute', async () => {
    const answer = await requestTransform(nc, { source: origin.fileUrl('long.gif') })
    expect(answer.error?.code).toBe('image_too_many_frames')
    expect(answer.error?.message).toMatch(/70000 ms, longer than the limit of 60000 ms/)
  })

  it('still makes a still image of such an animation', async () => {
    const answer = await requestTransform(nc, {
      source: origin.fileUrl('frames101.gif'),
      options: { format: 'jpeg' },
    })
    expect(answer.status).toBe(200)
    expect((await sharp(answer.body).metadata()).pages ?? 1).toBe(1)
  })
})

describe("the edge's deadline", () => {
  const deadlineIn = (ms: number) => ({ headers: { 'x-deadline': String(Date.now() + ms) } })

  it('drops a request whose deadline has already passed, without fetching', async () => {
    origin.add('late.png', { body: await fixtures.tinyPng(), contentType: 'image/png' })
    const before = await metric('images_deadline_exceeded_total', 'stage="queue"')
    const answer = await requestTransform(nc, { source: origin.fileUrl('late.png') }, deadlineIn(-1))
    expect(answer.status).toBe(504)
    expect(answer.error?.code).toBe('deadline_exceeded')
    expect(origin.hits('/files/late.png')).toBe(0)
    expect(await metric('images_deadline_exceeded_total', 'stage="queue"')).toBe(before + 1)
  })

  it('never starts a request whose deadline passed while it was queued', async () => {
    origin.add('queued.png', { body: await fixtures.tinyPng(), contentType: 'image/png' })
    const before = await metric('images_deadline_exceeded_total', 'stage="queue"')
    // Two slow sources hold both source slots for 1.5 s.
    const blockers = [1, 2].map((i) =>
      requestTransform(nc, {
        source: `${origin.url}/slow/1500/files/icon.png?block=${i}`,
        options: { width: 10 },
      })
    )
    await sleep(200)
    const answer = await requestTransform(nc, { source: origin.fileUrl('queued.png') }, deadlineIn(300))
    expect(answer.error?.code).toBe('deadline_exceeded')
    expect(answer.error?.message).toMatch(/before it started/)
    expect(origin.hits('/files/queued.png')).toBe(0)
    expect(await metric('images_deadline_exceeded_total', 'stage="queue"')).toBe(before + 1)
    for (const blocker of await Promise.all(blockers)) expect(blocker.status).toBe(200)
  })

  it('stops waiting for a slow source at the deadline', async () => {
    const answer = await requestTransform(
      nc,
      { source: `${origin.url}/slow/3000/files/icon.png?slow-fetch` },
      deadlineIn(400)
    )
    expect(answer.error?.code).toBe('deadline_exceeded')
    expect(answer.error?.message).toMatch(/while fetching/)
    expect(answer.ms).toBeLessThan(1500)
    expect(await metric('images_deadline_exceeded_total', 'stage="fetch"')).toBe(1)
  })

  it('refuses a malformed deadline', async () => {
    const answer = await requestTransform(
      nc,
      { source: origin.fileUrl('icon.png') },
      { headers: { 'x-deadline': 'tomorrow' } }
    )
    expect(answer.error).toEqual({
      code: 'invalid_request',
      message: 'x-deadline must be epoch milliseconds',
    })
  })
})
