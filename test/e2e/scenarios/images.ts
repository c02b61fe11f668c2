/**
 * Issue 3 through the edge on the local platform: miss then hit, 304, format negotiation, 20
 * identical concurrent misses collapsed into one transform, failover when the steered
 * datacenter's image service dies, and hostile sources refused with their codes.
 */
import { describe, expect, it } from 'vitest'
import sharp from 'sharp'
import { swarm } from '../../support/supervisor.ts'
import { readState } from '../../../local/state.ts'
import { waitUntil, type E2E } from '../context.ts'

const nearFra = { 'x-client-geo': '50.11,8.68' }

/** Transforms answered by every image service of the platform, from their /metrics. */
async function transformsDone(e2e: E2E): Promise<number> {
  const services = readState(e2e.localDir).processes.filter((p) => p.service === 'images')
  const texts = await Promise.all(
    services.map(async (p) => (await fetch(`${p.internalUrl ?? p.url}/metrics`)).text())
  )
  return texts
    .flatMap((t) => t.split('\n'))
    .filter((l) => l.startsWith('images_transforms_total{'))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0)
}

export function imageScenarios(e2e: E2E & { origin: { fileUrl(name: string, query?: string): string } }) {
  const img = (options: string, source: string) => `${e2e.edge}/img/${options}/${source}`

  describe('image proxy through the edge', () => {
    it('a miss is transformed in the nearest datacenter, then served from the edge cache', async () => {
      const url = img('width=300,format=webp', e2e.origin.fileUrl('photo.jpg', 'v=miss-hit'))
      const miss = await fetch(url, { headers: nearFra })
      expect(miss.status).toBe(200)
      expect(miss.headers.get('x-cache')).toBe('MISS')
      expect(miss.headers.get('x-datacenter')).toBe('fra')
      expect(miss.headers.get('content-type')).toBe('image/webp')
      expect(miss.headers.get('access-control-allow-origin')).toBe('*')
      expect(miss.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
      const bytes = Buffer.from(await miss.arrayBuffer())
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'webp', width: 300, height: 200 })
      const etag = miss.headers.get('etag')!
      expect(etag).toMatch(/^"[0-9a-f]{32}"$/)

      await expect
        .poll(async () => (await fetch(url, { headers: nearFra })).headers.get('x-cache'))
        .toBe('HIT')
      const hit = await fetch(url, { headers: nearFra })
      expect(Buffer.from(await hit.arrayBuffer()).equals(bytes)).toBe(true)
      expect(hit.headers.get('etag')).toBe(etag)

      const notModified = await fetch(url, { headers: { ...nearFra, 'if-none-match': etag } })
      expect(notModified.status).toBe(304)
      expect(await notModified.text()).toBe('')
    })

    it.each([
      ['image/avif,image/webp,*/*', 'image/avif', 'heif'],
      ['image/webp,*/*', 'image/webp', 'webp'],
      ['image/png,*/*;q=0.5', 'image/jpeg', 'jpeg'],
    ])('format=auto with Accept %s answers %s, with Vary: Accept', async (accept, type, format) => {
      const res = await fetch(img('width=120,format=auto', e2e.origin.fileUrl('photo.jpg', 'v=negotiate')), {
        headers: { ...nearFra, accept },
      })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe(type)
      expect(res.headers.get('vary')).toBe('Accept')
      expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).format).toBe(format)
    })

    it('collapses 20 identical concurrent misses into one backend transform', async () => {
      const before = await transformsDone(e2e)
      const url = img('width=500,format=png', e2e.origin.fileUrl('photo.jpg', 'v=collapse'))
      const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(url, { headers: nearFra })))
      const bodies = await Promise.all(answers.map(async (r) => Buffer.from(await r.arrayBuffer())))
      expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200))
      expect(bodies.every((b) => b.equals(bodies[0]!))).toBe(true)
      const transforms = (await transformsDone(e2e)) - before
      console.log(`20 identical concurrent misses -> ${transforms} backend transform(s)`)
      expect(transforms).toBe(1)
    })

    it('refuses hostile sources with their codes, through the edge', async () => {
      for (const [source, status, code] of [
        ['http://127.0.0.1:8080/', 403, 'source_address_blocked'],
        ['http://169.254.169.254/latest/meta-data', 403, 'source_address_blocked'],
        ['http://[::ffff:127.0.0.1]/', 403, 'source_address_blocked'],
        ['https://not-on-the-allowlist.example/a.png', 403, 'source_host_not_allowed'],
      ] as const) {
        const res = await fetch(img('width=100', source), { headers: nearFra })
        expect(res.status, source).toBe(status)
        expect(((await res.json()) as { error: { code: string } }).error.code, source).toBe(code)
      }
    })

    it('moves to the next datacenter when the steered one has no image service', async () => {
      const fraImages = readState(e2e.localDir).processes.find(
        (p) => p.dc === 'fra' && p.service === 'images'
      )!
      process.kill(-fraImages.pid, 'SIGKILL')
      try {
        await waitUntil(
          () => readState(e2e.localDir).processes.some((p) => p.pid === fraImages.pid),
          (x) => !x,
          5_000,
          'images gone'
        )
        const res = await fetch(img('width=200,format=webp', e2e.origin.fileUrl('photo.jpg', 'v=failover')), {
          headers: nearFra,
        })
        expect(res.status).toBe(200)
        expect(res.headers.get('x-datacenter')).not.toBe('fra')
        expect(['fra', null]).toContain(res.headers.get('x-failover-from'))
        expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width).toBe(200)
      } finally {
        await swarm(e2e.localDir, 'revive', 'fra')
      }
    })
  })
}
