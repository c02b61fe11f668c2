/**
 * The security review's attacks (issue 11) against the running local platform, which runs the
 * production security model: each attack that worked on commit 2fcd4d4 must fail here, with the
 * stable error it gets.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { randomUUID } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { unzipSync } from 'fflate'
import { connect } from '@nats-io/transport-node'
import { wsconnect } from '@nats-io/nats-core'
import { datacenterAddresses, standIns } from '../../../local/addresses.ts'
import {
  fixtureModules,
  postDelivery,
  registerRelease,
  releaseDelivery,
  releaseManifest,
} from '../../../local/stand-ins/github/index.ts'
import { embedTitles, recordedCalls } from '../../../local/stand-ins/discord.ts'
import { loadEdgeSecrets } from '../../../local/edge-secrets.ts'
import { datacenterState, waitUntil, type E2E } from '../context.ts'

const fra = datacenterAddresses(0)

const nearFra = { 'x-client-geo': '50.11,8.68' }

export function securityScenarios(
  e2e: E2E & { origin: { fileUrl(name: string, query?: string): string } }
): void {
  describe('security: NATS takes no anonymous client', () => {
    it("refuses an anonymous WebSocket client on fra's NATS (the listener published for the edge)", async () => {
      await expect(wsconnect({ servers: fra.natsWsUrl, reconnect: false })).rejects.toThrow(
        /Authorization Violation/
      )
    })

    it("refuses an anonymous client on fra's NATS client port", async () => {
      await expect(connect({ servers: fra.natsUrl, reconnect: false })).rejects.toThrow(
        /Authorization Violation/
      )
    })
  })

  describe('security: the image proxy is no amplifier', () => {
    it("answers the review's amplification request 400, four at once, and every datacenter stays healthy", async () => {
      const attack = `${e2e.edge}/img/width=8192,height=8192,fit=pad,format=webp,blur=100.1/${e2e.origin.fileUrl('photo.jpg', 'v=amplify')}`
      const states = () => Promise.all(['fra', 'ams', 'lon'].map((dc) => datacenterState(e2e.edge, dc)))
      // The scenarios before this one restart datacenters: start from a platform that is all up.
      await waitUntil(states, (s) => s.every((x) => x === 'healthy'), 30_000, 'every datacenter healthy')
      const answers = await Promise.all(Array.from({ length: 4 }, () => fetch(attack, { headers: nearFra })))
      for (const res of answers) {
        expect(res.status).toBe(400)
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_option')
      }
      expect(await states()).toEqual(['healthy', 'healthy', 'healthy'])
      const honest = await fetch(
        `${e2e.edge}/img/width=400,format=webp/${e2e.origin.fileUrl('photo.jpg', 'v=after-amplify')}`,
        { headers: nearFra }
      )
      // Served (by fra, or by the next one while this isolate's health memo still recalls the restarts before).
      expect(honest.status).toBe(200)
      expect(honest.headers.get('content-type')).toBe('image/webp')
    })
  })

  describe('security: a release belongs to the repository GitHub says', () => {
    it("refuses a correctly signed delivery naming item-piles' repository id and another repository's 99.0.0", async () => {
      const itemPiles = fixtureModules['item-piles']
      const forged = await releaseDelivery('item-piles', {
        gitHubUrl: standIns.github.url,
        owner: 'evil',
        repo: 'evil-repo',
        repositoryId: 900_000_666,
        version: '99.0.0',
        // The victim's public id in the payload; the attacker's repository serves the release.
        mutate: (payload) => void ((payload.repository as { id: number }).id = itemPiles.repositoryId),
      })
      await registerRelease(standIns.github.url, forged.spec)
      const res = await postDelivery(e2e.edge, forged, { headers: nearFra })
      expect(res.status).toBe(202)
      const outcome = await handledOutcome(e2e, forged.deliveryId)
      expect(outcome).not.toBe('packaged')
      const module = (await (await fetch(`${e2e.edge}/api/modules/item-piles`)).json()) as {
        repository: string
        latest: { stable: string | null }
      }
      expect(module.repository).toBe(`${itemPiles.owner}/${itemPiles.repo}`)
      expect(module.latest.stable).not.toBe('99.0.0')
      expect(
        (await recordedCalls(standIns.discord.url)).filter((c) => JSON.stringify(c.body).includes('99.0.0'))
      ).toEqual([])
    })

    it('a replayed signed delivery under a new delivery id is stored once and announced once', async () => {
      const original = await releaseDelivery('hello-world', {
        gitHubUrl: standIns.github.url,
        version: '8.8.8',
      })
      await registerRelease(standIns.github.url, original.spec)
      expect((await postDelivery(e2e.edge, original, { headers: nearFra })).status).toBe(202)
      expect(await handledOutcome(e2e, original.deliveryId)).toBe('packaged')
      // The attacker saw the delivery (GitHub's "Recent Deliveries"): same signed bytes, a new id header.
      const replay = { ...original, headers: { ...original.headers, 'X-GitHub-Delivery': randomUUID() } }
      const res = await postDelivery(e2e.edge, replay, { headers: nearFra })
      expect(res.status).toBe(202)
      expect(((await res.json()) as { duplicate: boolean }).duplicate).toBe(true)
      await sleep(1_000)
      const title = `${(releaseManifest(original.spec) as { title: string }).title} 8.8.8`
      expect(
        (await recordedCalls(standIns.discord.url)).filter(
          (c) => c.status < 300 && embedTitles(c).includes(title)
        )
      ).toHaveLength(1)
    })

    it('a zip with a symlink is refused, and the refusal is not announced in the public channel', async () => {
      const bad = await releaseDelivery('lib-wrapper', {
        gitHubUrl: standIns.github.url,
        version: '6.6.6',
        zip: 'symlink',
      })
      await registerRelease(standIns.github.url, bad.spec)
      expect((await postDelivery(e2e.edge, bad, { headers: nearFra })).status).toBe(202)
      expect(await handledOutcome(e2e, bad.deliveryId)).toBe('rejected')
      const release = (await (await fetch(`${e2e.edge}/api/modules/lib-wrapper/releases/6.6.6`)).json()) as {
        rejection?: { code: string }
      }
      expect(JSON.stringify(release)).toContain('zip_unsafe_entry')
      // The operator hears of it on the operator webhook; the public channel never does.
      const webhookId = (url: string) => url.split('/api/webhooks/')[1]!.split('/')[0]!
      await waitUntil(
        async () =>
          (await recordedCalls(standIns.discord.url)).filter((c) => JSON.stringify(c.body).includes('6.6.6')),
        (calls) => calls.some((c) => c.webhookId === webhookId(standIns.discord.operatorWebhookUrl)),
        10_000,
        'the rejection on the operator webhook'
      )
      const about = (await recordedCalls(standIns.discord.url)).filter((c) =>
        JSON.stringify(c.body).includes('6.6.6')
      )
      expect(about.filter((c) => c.webhookId === webhookId(standIns.discord.webhookUrl))).toEqual([])
    })
  })

  describe('security: the edge caches only what a GET produced', () => {
    it('HEAD on a zip nobody fetched, then GET: the whole zip, its length as its headers say', async () => {
      const d = await releaseDelivery('lib-wrapper', { gitHubUrl: standIns.github.url, version: '7.7.7' })
      await registerRelease(standIns.github.url, d.spec)
      expect((await postDelivery(e2e.edge, d, { headers: nearFra })).status).toBe(202)
      expect(await handledOutcome(e2e, d.deliveryId)).toBe('packaged')
      const url = `${e2e.edge}/modules/lib-wrapper/7.7.7/module.zip`
      const head = await fetch(url, { method: 'HEAD', headers: nearFra })
      expect(head.status).toBe(200)
      const get = await fetch(url, { headers: nearFra })
      expect(get.status).toBe(200)
      const body = new Uint8Array(await get.arrayBuffer())
      expect(body.length).toBeGreaterThan(0)
      if (get.headers.has('content-length'))
        expect(Number(get.headers.get('content-length'))).toBe(body.length)
      expect(Object.keys(unzipSync(body))).toContain('module.json')
    })
  })

  describe('security: a datacenter answers only the edge', () => {
    it("refuses a direct request without the edge's proof, and serves none of /metrics on its public port", async () => {
      const web = fra.serviceUrl('web')
      const direct = await fetch(`${web}/api/modules`)
      expect(direct.status).toBe(403)
      expect(((await direct.json()) as { error: { code: string } }).error.code).toBe('origin_proof_required')
      const { secrets } = loadEdgeSecrets(e2e.localDir, { create: false })
      const proof = {
        'cf-access-client-id': secrets.ORIGIN_CLIENT_ID,
        'cf-access-client-secret': secrets.ORIGIN_CLIENT_SECRET,
      }
      expect((await fetch(`${web}/api/modules`, { headers: proof })).status).toBe(200)
      expect((await fetch(`${web}/metrics`)).status).toBe(403)
      expect((await fetch(`${web}/metrics`, { headers: proof })).status).toBe(404)
    })
  })
}

/** The release service's outcome for a delivery, from the datacenters' release logs. */
async function handledOutcome(e2e: E2E, deliveryId: string): Promise<string> {
  let outcome: string | undefined
  await waitUntil(
    () => {
      for (const file of readdirSync(join(e2e.localDir, 'logs')).filter((f) => /-releases\.log$/.test(f))) {
        for (const line of readFileSync(join(e2e.localDir, 'logs', file), 'utf8').split('\n')) {
          if (!line.includes(deliveryId) || !line.includes('delivery handled')) continue
          outcome = (JSON.parse(line) as { outcome: string }).outcome
        }
      }
      return outcome
    },
    (o) => o !== undefined,
    20_000,
    `the release service handling delivery ${deliveryId}`
  )
  return outcome!
}
