/**
 * Issue 6: rolling restarts lose nothing. Under a steady, bounded load of image requests (every
 * one a cache miss) and GitHub release deliveries, each backend service of fra is restarted in
 * turn (SIGTERM, then started again), then fra's nats-server (SIGUSR2, lame duck). No client
 * request fails; every accepted release is packaged and announced exactly once.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { standIns } from '../../../local/addresses.ts'
import {
  postDelivery,
  registerRelease,
  releaseDelivery,
  releaseManifest,
} from '../../../local/stand-ins/github/index.ts'
import { failed, retried, steadyLoad } from '../../support/steady-load.ts'
import { embedTitles, recordedCalls } from '../../../local/stand-ins/discord.ts'
import { swarm } from '../../support/supervisor.ts'
import { waitUntil, type E2E } from '../context.ts'

const nearFra = { 'x-client-geo': '50.11,8.68' }

export function rollingRestartScenarios(
  e2e: E2E & { origin: { fileUrl(name: string, query?: string): string } }
) {
  describe('rolling restarts', () => {
    it(
      'restarting every service of fra, then its nats-server, fails no request and loses no release',
      { timeout: 240_000 },
      async () => {
        let unique = 0
        const images = steadyLoad({
          url: '', // replaced per request below
          clients: 2,
          pauseMs: 50,
          maxMs: 180_000,
          urlFor: () =>
            `${e2e.edge}/img/width=120,format=webp/${e2e.origin.fileUrl('photo.jpg', `chaos=${unique++}`)}`,
          headers: nearFra,
        })

        // Releases, one after another: each delivered (a 503 is redelivered, as GitHub's redelivery
        // would), then waited for until its manifest is published, so versions only ever go up.
        const accepted: string[] = []
        const stalls: number[] = []
        let releasing = true
        const releases = (async () => {
          for (let n = 1; releasing && n <= 200; n++) {
            const version = `4.0.${n}`
            const delivery = await releaseDelivery('hello-world', { gitHubUrl: standIns.github.url, version })
            await registerRelease(standIns.github.url, delivery.spec)
            const started = Date.now()
            for (let attempt = 1; attempt <= 10; attempt++) {
              const res = await postDelivery(e2e.edge, delivery, { headers: nearFra })
              if (res.status === 202) {
                accepted.push(version)
                break
              }
              await sleep(1_000)
            }
            const { id } = releaseManifest(delivery.spec) as { id: string }
            await waitUntil(
              async () =>
                (await fetch(`${e2e.edge}/modules/${id}/${version}/module.json`, { headers: nearFra }))
                  .status === 200,
              (ok) => ok,
              60_000,
              `hello-world ${version} packaged`
            )
            stalls.push(Date.now() - started)
          }
        })()

        await waitUntil(
          () => images.answers.length,
          (n) => n >= 10,
          20_000,
          'image load running'
        )
        const timings: Record<string, string> = {}
        for (const service of ['web', 'images', 'releases', 'notifier', 'nats']) {
          timings[service] = (await swarm(e2e.localDir, 'restart', 'fra', service)).trim()
          await sleep(1_000)
        }
        releasing = false
        await releases
        const answers = await images.stop()

        // Every accepted release announced exactly once.
        const titles = accepted.map((v) => `Hello World ${v}`)
        await waitUntil(
          async () => {
            const calls = await recordedCalls(standIns.discord.url)
            return titles.filter((t) => calls.some((c) => c.status < 300 && embedTitles(c).includes(t)))
              .length
          },
          (n) => n === titles.length,
          60_000,
          'every accepted release announced'
        )
        await sleep(1_000)
        const calls = await recordedCalls(standIns.discord.url)
        const perRelease = titles.map(
          (t) => calls.filter((c) => c.status < 300 && embedTitles(c).includes(t)).length
        )

        console.log(
          [
            'rolling restarts of fra:',
            ...Object.values(timings).map((t) => `  ${t}`),
            `  image requests: served ${answers.length - failed(answers).length}, retried on another datacenter ${retried(answers).length}, failed ${failed(answers).length}, longest ${Math.max(...answers.map((a) => a.ms))} ms`,
            `  releases: accepted ${accepted.length}, announced ${perRelease.filter((n) => n === 1).length} once, ${perRelease.filter((n) => n > 1).length} more than once; longest delivery-to-published ${Math.max(...stalls)} ms`,
          ].join('\n')
        )
        expect(failed(answers)).toEqual([])
        expect(accepted.length).toBeGreaterThan(3)
        expect(perRelease).toEqual(titles.map(() => 1))
      }
    )
  })
}
