/**
 * Issue 5 on the local platform: a GitHub release of each fixture module, sent to the edge as
 * GitHub sends it, becomes a downloadable Foundry update and exactly one Discord message, also
 * when the release service dies mid-packaging, when the datacenter leading the stream dies, and
 * when Discord answers 429 then 500.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { unzipSync, strFromU8 } from 'fflate'
import { datacenterAddresses, standIns } from '../../../local/addresses.ts'
import {
  fixtureNames,
  postDelivery,
  registerRelease,
  releaseDelivery,
  releaseManifest,
  zipObjectPath,
  type FixtureName,
} from '../../../local/stand-ins/github/index.ts'
import { embedTitles, recordedCalls } from '../../../local/stand-ins/discord.ts'
import { releaseDemo, swarm } from '../../support/supervisor.ts'
import { readState } from '../../../local/state.ts'
import { waitUntil, type E2E } from '../context.ts'

const nearAms = { 'x-client-geo': '52.37,4.90' }

/** Discord calls whose embed title ends with `suffix` (e.g. " 3.3.0"), successful ones only unless asked. */
const callsFor = async (suffix: string, all = false) =>
  (await recordedCalls(standIns.discord.url)).filter(
    (c) => (all || c.status < 300) && embedTitles(c).some((t) => t.endsWith(suffix))
  )
const announced = async (title: string) => (await callsFor(title)).length

/**
 * Releases `fixture` at `version` the way GitHub does: assets at the GitHub stand-in, a signed
 * delivery to the edge. A 503 is redelivered, as GitHub's redelivery would (same delivery id), up to
 * `redeliveries` times; `attempts` says how many it took.
 */
async function release(
  e2e: E2E,
  fixture: FixtureName,
  version: string,
  opts: { slowZipMs?: number; redeliveries?: number } = {}
) {
  const { redeliveries = 0, ...spec } = opts
  const delivery = await releaseDelivery(fixture, { gitHubUrl: standIns.github.url, version, ...spec })
  await registerRelease(standIns.github.url, delivery.spec)
  let attempts = 0
  for (;;) {
    attempts++
    const res = await postDelivery(e2e.edge, delivery, { headers: nearAms })
    if (res.status !== 503 || attempts > redeliveries) return { res, delivery, attempts }
    await res.body?.cancel()
    await sleep(1_000)
  }
}

async function latestManifest(
  e2e: E2E,
  id: string
): Promise<{ version?: string; manifest?: string; download?: string }> {
  const res = await fetch(`${e2e.edge}/modules/${id}/module.json`, { headers: nearAms })
  return res.status === 200 ? ((await res.json()) as { version: string }) : {}
}

export function releaseScenarios(e2e: E2E) {
  describe('release pipeline through the edge', () => {
    it.each(fixtureNames)(
      'a release of %s becomes a Foundry update, a download and one Discord message',
      async (fixture) => {
        const version = '3.1.4'
        const { res, delivery } = await release(e2e, fixture, version)
        expect(res.status).toBe(202)
        // Legacy (Foundry 0.x) manifests name the module `name`, later ones `id`.
        const written = releaseManifest(delivery.spec) as { id?: string; name?: string; title: string }
        const id = (written.id ?? written.name)!
        const moduleTitle = written.title
        // Foundry's update check: the stable manifest URL, a newer version than the installed one.
        await waitUntil(
          () => latestManifest(e2e, id),
          (m) => m.version === version,
          20_000,
          `${id} ${version} published`
        )
        const manifest = await latestManifest(e2e, id)
        expect(manifest.manifest).toBe(`${e2e.edge}/modules/${id}/module.json`)
        expect(manifest.download).toBe(`${e2e.edge}/modules/${id}/${version}/module.zip`)

        const zip = await fetch(manifest.download!, { headers: nearAms })
        expect(zip.status).toBe(200)
        const files = unzipSync(new Uint8Array(await zip.arrayBuffer()))
        const inside = Object.entries(files).find(([name]) => /^([^/]+\/)?module\.json$/.test(name))
        expect(inside, 'module.json in the zip').toBeDefined()
        const zipped = JSON.parse(strFromU8(inside![1])) as {
          id: string
          version: string
          manifest: string
          download: string
        }
        expect(zipped.id ?? (zipped as unknown as { name: string }).name).toBe(id)
        expect(zipped).toMatchObject({ version, manifest: manifest.manifest, download: manifest.download })

        const title = `${moduleTitle} ${version}`
        await waitUntil(
          () => announced(title),
          (n) => n >= 1,
          20_000,
          `${title} announced`
        )
        await sleep(500)
        expect(await announced(title)).toBe(1)
      }
    )

    it(
      'npm run release:demo releases a fixture module on the running platform',
      { timeout: 60_000 },
      async () => {
        const output = await releaseDemo(e2e.localDir, 'hello-world', '--version', '3.1.9')
        expect(output).toContain('HTTP 202 Accepted')
        await waitUntil(
          () => latestManifest(e2e, 'hello-world'),
          (m) => m.version === '3.1.9',
          20_000,
          'demo release published'
        )
      }
    )

    it('a redelivery stores nothing twice and announces nothing twice', { timeout: 60_000 }, async () => {
      const { res, delivery } = await release(e2e, 'item-piles', '3.2.0')
      expect(res.status).toBe(202)
      const again = await postDelivery(e2e.edge, delivery, { headers: nearAms })
      expect(await again.json()).toMatchObject({ stored: true, duplicate: true })
      await waitUntil(
        () => announced(' 3.2.0'),
        (n) => n >= 1,
        20_000,
        'announced'
      )
      await sleep(1_000)
      expect(await announced(' 3.2.0')).toBe(1)
    })

    it(
      'the release service killed during packaging: packaged and announced exactly once',
      { timeout: 120_000 },
      async () => {
        // The zip download takes 3 s; the release service of whichever datacenter took it is killed meanwhile.
        const { res, delivery } = await release(e2e, 'lib-wrapper', '3.3.0', { slowZipMs: 3_000 })
        expect(res.status).toBe(202)
        // Killed while the zip (3 s to serve) is being downloaded, so the work is cut halfway.
        const zipPath = zipObjectPath(delivery.spec.releaseId)
        const zipDownloads = async () =>
          (
            (await (await fetch(`${standIns.github.url}/_control/requests`)).json()) as Array<{
              path: string
            }>
          ).filter((r) => r.path === zipPath).length
        await waitUntil(zipDownloads, (n) => n >= 1, 20_000, 'the zip download started')
        const releases = readState(e2e.localDir).processes.filter((p) => p.service === 'releases')
        for (const p of releases) process.kill(-p.pid, 'SIGKILL')
        try {
          await sleep(500)
        } finally {
          for (const dc of ['fra', 'ams', 'lon']) await swarm(e2e.localDir, 'revive', dc)
        }
        await waitUntil(
          () => latestManifest(e2e, 'lib-wrapper'),
          (m) => m.version === '3.3.0',
          60_000,
          'packaged after the crash'
        )
        await waitUntil(
          () => announced(' 3.3.0'),
          (n) => n >= 1,
          60_000,
          'announced after the crash'
        )
        await sleep(1_000)
        expect(await announced(' 3.3.0')).toBe(1)
        // The interrupted download was done again by a revived service.
        expect(await zipDownloads()).toBeGreaterThanOrEqual(2)
      }
    )

    it('Discord answers 429, then 500: still exactly one announcement', { timeout: 90_000 }, async () => {
      await fetch(`${standIns.discord.url}/_control/respond`, {
        method: 'POST',
        body: JSON.stringify({ responses: [{ status: 429, retryAfter: 0.5 }, 500] }),
      })
      const { res } = await release(e2e, 'vtta-core', '3.4.0')
      expect(res.status).toBe(202)
      await waitUntil(
        () => announced(' 3.4.0'),
        (n) => n >= 1,
        60_000,
        'announced after 429 and 500'
      )
      await sleep(1_000)
      expect((await callsFor(' 3.4.0', true)).map((c) => c.status)).toEqual([429, 500, 200])
    })

    it(
      'the datacenter leading the GITHUB stream dies: releases sent meanwhile are packaged and announced once',
      { timeout: 240_000 },
      async () => {
        const leader = await streamLeader('GITHUB')
        expect(['fra', 'ams', 'lon']).toContain(leader)
        await swarm(e2e.localDir, 'kill', leader)
        let sent: Array<Awaited<ReturnType<typeof release>>>
        try {
          sent = await Promise.all(
            (['hello-world', 'test-module', 'ddb-importer'] as const).map((fixture) =>
              release(e2e, fixture, '3.5.0', { redeliveries: 5 })
            )
          )
          expect(sent.map((s) => s.res.status)).toEqual([202, 202, 202])
          console.log(
            `stream leader ${leader} killed: deliveries took ${sent.map((s) => s.attempts).join(', ')} attempt(s)`
          )
        } finally {
          await swarm(e2e.localDir, 'revive', leader)
        }
        for (const { delivery } of sent) {
          const { id, name } = releaseManifest(delivery.spec) as { id?: string; name?: string }
          await waitUntil(
            () => latestManifest(e2e, (id ?? name)!),
            (m) => m.version === '3.5.0',
            60_000,
            `${id ?? name} 3.5.0 packaged`
          )
        }
        // A notifier in the killed datacenter may have held an announcement: it is redelivered after its ack wait.
        await waitUntil(
          () => announced(' 3.5.0'),
          (n) => n >= 3,
          90_000,
          'all three announced'
        )
        await sleep(2_000)
        expect(await announced(' 3.5.0')).toBe(3)
      }
    )
  })
}

/** Which datacenter's nats-server leads a stream (server names are datacenter ids). */
async function streamLeader(stream: string): Promise<string> {
  const jsz = (await (
    await fetch(`${datacenterAddresses(0).natsMonitorUrl}/jsz?streams=true&accounts=true`)
  ).json()) as {
    account_details?: Array<{ stream_detail?: Array<{ name: string; cluster?: { leader?: string } }> }>
  }
  for (const account of jsz.account_details ?? [])
    for (const s of account.stream_detail ?? [])
      if (s.name === stream && s.cluster?.leader) return s.cluster.leader
  throw new Error(`no leader found for ${stream}`)
}
