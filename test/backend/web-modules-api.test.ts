/**
 * The web service's module API over a registry filled by the real release pipeline: manifests,
 * zips, listings, ETags and caching, rejection reasons, and hostile input.
 */
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts'
import { startService, type TestService } from '../support/backend-service.ts'
import { startPipeline, type Pipeline } from '../support/release-pipeline.ts'
import { originProofHeaders } from '../support/origin-proof.ts'

let nats: TestNatsServer
/** A web service that started before any release service existed. */
let early: TestService
let p: Pipeline

beforeAll(async () => {
  nats = await startNatsServer('modules-api')
  early = await startService('web', { DC: 'ams', NATS_URL: nats.url, LOG_LEVEL: 'warn' })
})
afterAll(async () => {
  await p?.stop()
  await early?.stop()
  await nats?.dispose()
})

/** Polls outside a test (expect.poll is for tests only). */
async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not true after ${timeoutMs} ms: ${condition.toString()}`)
    await sleep(50)
  }
}

const get = (path: string, headers: Record<string, string> = {}) => p.api(path, { headers })
const json = (res: Response): Promise<unknown> => res.json()
/** The `version` of a manifest or release answer. */
const versionOf = async (res: Response) => z.object({ version: z.string() }).parse(await res.json()).version
// Matchers typed as what they stand for, not `any`.
const anyString: unknown = expect.any(String)
const matching = (pattern: RegExp): unknown => expect.stringMatching(pattern)

/** A GET with the path sent exactly as written (fetch would normalise `..`). */
function rawGet(
  base: string,
  path: string
): Promise<{ status: number; body: string; contentType: string; cacheControl: string | undefined }> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    request(
      { host: url.hostname, port: url.port, path, method: 'GET', headers: originProofHeaders() },
      (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            body,
            contentType: String(res.headers['content-type']),
            cacheControl: res.headers['cache-control'],
          })
        )
      }
    )
      .on('error', reject)
      .end()
  })
}

describe('before the release service has ever run', () => {
  it('the registry is empty, not broken', async () => {
    const list = await fetch(`${early.url}/api/modules`, { headers: originProofHeaders() })
    expect(list.status).toBe(200)
    expect(await list.json()).toEqual({ modules: [] })
    const missing = await fetch(`${early.url}/modules/item-piles/module.json`, {
      headers: originProofHeaders(),
    })
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ error: { code: 'module_not_found' } })
  })
})

describe('module API', () => {
  beforeAll(async () => {
    p = await startPipeline({ natsUrls: [nats.url], replicas: 1 })
    for (const [version, prerelease] of [
      ['1.0.0', false],
      ['1.1.0', false],
      ['2.0.0-beta.1', true],
    ] as const) {
      const d = await p.gh.delivery('item-piles', { version, prerelease, notes: `notes ${version}` })
      await p.publish(d)
      await until(async () => (await p.packaged()).some((e) => e.version === version))
    }
  }, 60_000)

  it('serves the latest stable manifest for 60 s, with a strong ETag and 304', async () => {
    const res = await get('/modules/item-piles/module.json')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(res.headers.get('cache-control')).toBe('public, max-age=60, s-maxage=60')
    const text = await res.text()
    const etag = res.headers.get('etag')!
    expect(etag).toBe(`"${createHash('sha256').update(text).digest('hex')}"`)
    expect(JSON.parse(text)).toMatchObject({ id: 'item-piles', version: '1.1.0' })
    const again = await get('/modules/item-piles/module.json', { 'if-none-match': etag })
    expect(again.status).toBe(304)
    expect(again.headers.get('etag')).toBe(etag)
    expect((await get('/modules/item-piles/module.json', { 'if-none-match': `W/${etag}` })).status).toBe(304)
    expect((await get('/modules/item-piles/module.json', { 'if-none-match': '"other"' })).status).toBe(200)
  })

  it('serves versioned manifests and zips as immutable, the zip streamed whole', async () => {
    const manifest = await get('/modules/item-piles/1.0.0/module.json')
    expect(manifest.status).toBe(200)
    expect(manifest.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect(await versionOf(manifest)).toBe('1.0.0')

    const zip = await get('/modules/item-piles/1.0.0/module.zip')
    expect(zip.status).toBe(200)
    expect(zip.headers.get('content-type')).toBe('application/zip')
    expect(zip.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect(zip.headers.get('content-disposition')).toBe('attachment; filename="item-piles-1.0.0.zip"')
    const bytes = Buffer.from(await zip.arrayBuffer())
    expect(Number(zip.headers.get('content-length'))).toBe(bytes.length)
    expect(zip.headers.get('etag')).toBe(`"${createHash('sha256').update(bytes).digest('hex')}"`)
    expect(
      (await get('/modules/item-piles/1.0.0/module.zip', { 'if-none-match': zip.headers.get('etag')! }))
        .status
    ).toBe(304)
    const head = await p.api('/modules/item-piles/1.0.0/module.zip', { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe(String(bytes.length))
  })

  it('serves the beta channel: the newest of the latest beta and the latest stable', async () => {
    expect(await versionOf(await get('/modules/item-piles/beta/module.json'))).toBe('2.0.0-beta.1')
  })

  it('lists modules and versions', async () => {
    const list = await get('/api/modules')
    expect(list.headers.get('cache-control')).toBe('public, max-age=60, s-maxage=60')
    expect(list.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/)
    expect(await json(list)).toEqual({
      modules: [
        {
          id: 'item-piles',
          title: 'Item Piles',
          repository: 'fantasycalendar/FoundryVTT-ItemPiles',
          latest: { stable: '1.1.0', beta: '2.0.0-beta.1' },
          manifestUrl: `${p.edge.url}/modules/item-piles/module.json`,
          updatedAt: anyString,
        },
      ],
    })
    const one = z
      .object({
        betaManifestUrl: z.string().nullable(),
        versions: z.array(z.looseObject({ version: z.string() })),
      })
      .parse(await json(await get('/api/modules/item-piles')))
    expect(one.versions.map((v) => v.version)).toEqual(['1.0.0', '1.1.0', '2.0.0-beta.1'])
    expect(one.betaManifestUrl).toBe(`${p.edge.url}/modules/item-piles/beta/module.json`)
    expect(one.versions[0]).toMatchObject({
      channel: 'stable',
      manifestUrl: `${p.edge.url}/modules/item-piles/1.0.0/module.json`,
      downloadUrl: `${p.edge.url}/modules/item-piles/1.0.0/module.zip`,
      compatibility: { minimum: '13', verified: '14', maximum: '14' },
    })
  })

  it('shows one release with its notes, and a rejected one with the reason', async () => {
    expect(await json(await get('/api/modules/item-piles/releases/1.1.0'))).toMatchObject({
      version: '1.1.0',
      status: 'packaged',
      notes: 'notes 1.1.0',
      lastRejection: null,
    })
    const d = await p.gh.delivery('item-piles', { version: '0.5.0' })
    await p.publish(d)
    await expect
      .poll(async () => (await get('/api/modules/item-piles/releases/0.5.0')).status, { timeout: 10_000 })
      .toBe(200)
    expect(await json(await get('/api/modules/item-piles/releases/0.5.0'))).toEqual({
      moduleId: 'item-piles',
      version: '0.5.0',
      status: 'rejected',
      rejection: {
        code: 'version_not_newer',
        reason: matching(/0\.5\.0 is not newer than 1\.1\.0/),
        tag: 'v0.5.0',
        rejectedAt: anyString,
      },
    })
    expect((await get('/modules/item-piles/0.5.0/module.json')).status).toBe(404)
  })

  it('the web service that started first sees the registry once it exists', async () => {
    await expect
      .poll(
        async () =>
          (await fetch(`${early.url}/modules/item-piles/module.json`, { headers: originProofHeaders() }))
            .status,
        {
          timeout: 10_000,
        }
      )
      .toBe(200)
  })

  it.each([
    ['/modules/nope/module.json', 404, 'module_not_found'],
    ['/modules/nope/beta/module.json', 404, 'module_not_found'],
    ['/modules/item-piles/9.9.9/module.json', 404, 'version_not_found'],
    ['/modules/item-piles/9.9.9/module.zip', 404, 'version_not_found'],
    ['/api/modules/nope', 404, 'module_not_found'],
    ['/api/modules/item-piles/releases/9.9.9', 404, 'version_not_found'],
    ['/api/modules/nope/releases/1.0.0', 404, 'module_not_found'],
    ['/modules/..%2F..%2Fetc%2Fpasswd/module.json', 400, 'invalid_module_id'],
    ['/modules/../etc/module.json', 400, 'invalid_module_id'],
    ['/modules/../../etc/module.json', 404, 'not_found'],
    ['/modules/item-piles/..%2F1.0.0/module.zip', 400, 'invalid_version'],
    ['/modules/item-piles/../module.zip', 400, 'invalid_version'],
    ['/modules/aaa…(5000 characters)/module.json', 400, 'invalid_module_id'],
    ['/api/modules/item-piles/releases/111…(200 digits)', 400, 'invalid_version'],
    ['/modules/Item-Piles/module.json', 400, 'invalid_module_id'],
    ['/modules/item%00piles/module.json', 400, 'invalid_module_id'],
    ['/api/modules/%E0%A4%A', 400, 'bad_request'],
    ['/modules/item-piles/1.0.0/module.zip%00', 404, 'not_found'],
  ])('hostile or unknown: %s → %i %s, never cached', async (label, status, code) => {
    const path = label
      .replace('aaa…(5000 characters)', 'a'.repeat(5000))
      .replace('111…(200 digits)', '1'.repeat(200))
    const res = await rawGet(p.web!.url, path)
    expect(res.status).toBe(status)
    expect(res.contentType).toMatch(/^application\/json/)
    expect(res.cacheControl).toBe('no-store')
    expect(JSON.parse(res.body)).toMatchObject({ error: { code, message: anyString } })
  })

  it('is still healthy after all that', async () => {
    expect((await get('/modules/item-piles/module.json')).status).toBe(200)
    expect((await fetch(`${p.web!.internalUrl}/healthz`)).status).toBe(200)
  })
})
