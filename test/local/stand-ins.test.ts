/**
 * The local GitHub and Discord stand-ins speak the real APIs' shapes (compared with the saved
 * fixtures), sign deliveries as GitHub does, and can be driven from another process.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { strFromU8, unzipSync } from 'fflate'
import { verify } from '@octokit/webhooks-methods'
import { z } from 'zod'
import {
  GITHUB_TEST_SECRET,
  registerRelease,
  releaseDelivery,
  startGitHubStandIn,
  type GitHubStandIn,
} from '../../local/stand-ins/github/index.ts'
import { startDiscordStandIn, type DiscordStandIn } from '../../local/stand-ins/discord.ts'

const fixtures = join(import.meta.dirname, '..', 'fixtures')
const deliveries = join(fixtures, 'github', 'deliveries')
const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'))
/** A saved answer of Discord's: its body (and headers, for the 429 examples). */
const discordFixture = (name: string) =>
  z.object({ body: z.record(z.string(), z.unknown()) }).parse(readJson(join(fixtures, 'discord', name)))
/** The headers of a saved delivery, as GitHub spelled them. */
const deliveryHeaders = (name: string) =>
  z.record(z.string(), z.string()).parse(readJson(join(deliveries, name, 'headers.json')))
/** A delivery payload's parts whose keys the stand-in's must match. */
const payloadSchema = z.looseObject({
  release: z.looseObject({ assets: z.array(z.looseObject({})) }),
  repository: z.looseObject({}),
})
const assetSchema = z.looseObject({
  id: z.number(),
  name: z.string(),
  url: z.string(),
  size: z.number(),
  browser_download_url: z.string(),
})

let gh: GitHubStandIn
let discord: DiscordStandIn

beforeAll(async () => {
  ;[gh, discord] = await Promise.all([startGitHubStandIn(), startDiscordStandIn()])
})
afterAll(async () => {
  await Promise.all([gh?.stop(), discord?.stop()])
})

const keysOf = (o: object) => Object.keys(o).sort()

describe('GitHub stand-in', () => {
  it('the copied delivery fixtures still verify (all but the tampered one)', async () => {
    const cases = readdirSync(deliveries, { withFileTypes: true }).filter((d) => d.isDirectory())
    expect(cases.length).toBe(10)
    for (const c of cases) {
      const body = readFileSync(join(deliveries, c.name, 'body.json'), 'utf8')
      const signature = deliveryHeaders(c.name)['X-Hub-Signature-256']!
      expect(await verify(GITHUB_TEST_SECRET, body, signature)).toBe(c.name !== 'release-published-tampered')
    }
  })

  it('builds and signs a release delivery shaped like the real fixture', async () => {
    const d = await releaseDelivery('item-piles', { gitHubUrl: gh.url, version: '3.1.0' })
    const real = payloadSchema.parse(readJson(join(deliveries, 'release-published-with-assets', 'body.json')))
    const realHeaders = deliveryHeaders('release-published')
    const payload = payloadSchema.parse(JSON.parse(d.body))
    expect(keysOf(payload)).toEqual(keysOf(real))
    expect(keysOf(payload.release)).toEqual(keysOf(real.release))
    expect(keysOf(payload.release.assets[0]!)).toEqual(keysOf(real.release.assets[0]!))
    expect(keysOf(payload.repository)).toEqual(keysOf(real.repository))
    expect(keysOf(d.headers)).toEqual(keysOf(realHeaders))
    expect(payload).toMatchObject({
      action: 'published',
      release: { tag_name: 'v3.1.0', prerelease: false, draft: false },
      repository: { full_name: 'fantasycalendar/FoundryVTT-ItemPiles' },
    })
    expect(d.headers['X-GitHub-Delivery']).toMatch(/^[0-9a-f-]{36}$/)
    expect(d.headers['Content-Length']).toBe(String(Buffer.byteLength(d.body)))
    expect(await verify(GITHUB_TEST_SECRET, d.body, d.headers['X-Hub-Signature-256']!)).toBe(true)
    expect(await verify('another secret', d.body, d.headers['X-Hub-Signature-256']!)).toBe(false)
  })

  it('serves the release, its assets and their bytes as GitHub does (redirects included)', async () => {
    const d = await gh.delivery('lib-wrapper', { version: '1.13.6', notes: 'hello' })
    const release: unknown = await (
      await fetch(`${gh.url}/repos/ruipin/fvtt-lib-wrapper/releases/${d.spec.releaseId}`)
    ).json()
    expect(release).toEqual(payloadSchema.parse(JSON.parse(d.body)).release)
    const [manifest, zipAsset] = z
      .tuple([assetSchema, assetSchema])
      .parse(
        await (
          await fetch(`${gh.url}/repos/ruipin/fvtt-lib-wrapper/releases/${d.spec.releaseId}/assets`)
        ).json()
      )
    expect([manifest.name, zipAsset.name]).toEqual(['module.json', 'module.zip'])

    const api = await fetch(zipAsset.url, {
      headers: { accept: 'application/octet-stream' },
      redirect: 'manual',
    })
    expect(api.status).toBe(302)
    const zip = new Uint8Array(
      await (await fetch(zipAsset.url, { headers: { accept: 'application/octet-stream' } })).arrayBuffer()
    )
    expect(zip.length).toBe(zipAsset.size)
    const files = unzipSync(zip)
    expect(JSON.parse(strFromU8(files['module.json']!))).toMatchObject({
      id: 'lib-wrapper',
      version: '1.13.6',
    })
    expect(strFromU8(files['src/index.js']!)).toContain("export const version = '1.13.6'")

    const browser = await fetch(manifest.browser_download_url)
    expect(await browser.json()).toMatchObject({ version: '1.13.6' })
    const meta: unknown = await (await fetch(manifest.url)).json()
    expect(meta).toMatchObject({ id: manifest.id, name: 'module.json', state: 'uploaded' })
  })

  it("answers unknown releases with GitHub's 404 body", async () => {
    const res = await fetch(`${gh.url}/repos/nobody/nothing/releases/1`)
    expect(res.status).toBe(404)
    expect(await res.json()).toMatchObject({
      message: 'Not Found',
      documentation_url: 'https://docs.github.com/rest',
    })
  })

  it('has the octokit example release the delivery fixtures name', async () => {
    const release: unknown = await (
      await fetch(`${gh.url}/repos/Codertocat/Hello-World/releases/17372790`)
    ).json()
    expect(release).toMatchObject({ id: 17372790, tag_name: '0.0.1' })
  })

  it('takes releases from another process', async () => {
    const d = await releaseDelivery('vtta-core', { gitHubUrl: gh.url, version: '2.1.0' })
    await registerRelease(gh.url, d.spec)
    const res = await fetch(`${gh.url}/repos/VTTAssets/vtta-core/releases/${d.spec.releaseId}`)
    expect(res.status).toBe(200)
    const bad = await fetch(`${gh.url}/_control/releases`, { method: 'POST', body: '{"fixture":"nope"}' })
    expect(bad.status).toBe(400)
    expect(gh.requests().some((r) => r.path === '/_control/releases')).toBe(true)
  })
})

describe('Discord stand-in', () => {
  const execute = (body: unknown, wait = true) =>
    fetch(`${discord.webhookUrl}${wait ? '?wait=true' : ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })

  it('answers ?wait=true with a message object, and 204 without', async () => {
    const res = await execute({ content: 'hello', embeds: [{ title: 't' }] })
    expect(res.status).toBe(200)
    const message = z.looseObject({ id: z.string() }).parse(await res.json())
    expect(message.id).toMatch(/^\d+$/)
    expect(message).toMatchObject({
      content: 'hello',
      webhook_id: '123456789012345678',
      type: 0,
      embeds: [{ type: 'rich', title: 't' }],
    })
    expect((await execute({ content: 'x' }, false)).status).toBe(204)
    expect(
      discord
        .calls()
        .slice(-2)
        .map((c) => [c.wait, c.status])
    ).toEqual([
      [true, 200],
      [false, 204],
    ])
  })

  it("answers 429 with the documented body and headers, and 401/404 with Discord's bodies", async () => {
    discord.respondNext({ status: 429, retryAfter: 1.5 }, 401, 404, 500)
    const limited = await execute({ content: 'x' })
    expect(limited.status).toBe(429)
    const example = discordFixture('response-429-user.http.json')
    expect(await limited.json()).toEqual({ ...example.body, retry_after: 1.5 })
    expect(limited.headers.get('retry-after')).toBe('2')
    expect(limited.headers.get('x-ratelimit-scope')).toBe('user')
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0')
    expect(limited.headers.get('x-ratelimit-reset-after')).toBe('1.500')
    const unauthorized = await execute({ content: 'x' })
    expect([unauthorized.status, await unauthorized.json()]).toEqual([
      401,
      discordFixture('response-401-invalid-webhook-token.json').body,
    ])
    const unknown = await execute({ content: 'x' })
    expect([unknown.status, await unknown.json()]).toEqual([
      404,
      discordFixture('response-404-unknown-webhook.json').body,
    ])
    expect((await execute({ content: 'x' })).status).toBe(500)
    expect((await execute({ content: 'x' })).status).toBe(200)
  })

  it('refuses what Discord refuses: an embed over its limits', async () => {
    const res = await execute({ embeds: [{ title: 'x'.repeat(257) }] })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({
      code: 50035,
      message: 'Invalid Form Body',
      errors: { embeds: { '0': { title: { _errors: [expect.any(Object)] } } } },
    })
    const total = await execute({
      embeds: [{ description: 'x'.repeat(4000) }, { description: 'y'.repeat(2500) }],
    })
    expect(total.status).toBe(400)
  })

  it('can be driven over HTTP from another process', async () => {
    const scripted = await fetch(`${discord.url}/_control/respond`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ responses: [{ status: 429, retryAfter: 0.1, scope: 'global' }] }),
    })
    expect(scripted.status).toBe(200)
    expect(await scripted.json()).toEqual({
      queued: [{ status: 429, retryAfter: 0.1, scope: 'global' }],
      pending: 1,
    })
    const limited = await execute({ content: 'x' })
    expect(limited.status).toBe(429)
    expect(await limited.json()).toMatchObject({ global: true })
    const calls = z.array(z.unknown()).parse(await (await fetch(`${discord.url}/_control/calls`)).json())
    expect(calls.at(-1)).toMatchObject({ status: 429, body: { content: 'x' } })
    expect(
      (await fetch(`${discord.url}/_control/respond`, { method: 'POST', body: '{"responses":[42]}' })).status
    ).toBe(400)
  })
})
