/**
 * The drills' steady stream through the edge: image misses (every request a new source URL) and GitHub
 * release deliveries one after another (each redelivered on 503 as GitHub's redelivery would, then waited
 * for until packaged), counting what was served, retried and failed (an image, a delivery or a manifest
 * request answered 5xx or not at all), and what was accepted and announced.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import {
  postDelivery,
  registerRelease,
  releaseDelivery,
  releaseManifest,
} from '../../local/stand-ins/github/index.ts'
import { embedTitles, recordedCalls } from '../../local/stand-ins/discord.ts'
import { retried, steadyLoad, type Answer } from '../support/steady-load.ts'

/** An image request that did not answer 200 (a drill's load asks only for what must succeed). */
const failed = (answers: Answer[]) => answers.filter((a) => a.status !== 200)

export interface LoadTarget {
  edge: string
  github: string
  discord: string
  imageUrl: (unique: string) => string
  headers: Record<string, string>
}

export interface LoadFigures {
  /** Every image answer, in order. */
  answers: Answer[]
  served: number
  failed: number
  retried: number
  accepted: string[]
  announcedOnce: number
  announcedTwice: number
  /** Accepted but never announced: each version and when its delivery was accepted (ms since the epoch). */
  unannounced: Array<{ version: string; acceptedAt: number }>
  failures: unknown[]
}

let nextRelease = 1
/** Round robin over fixture modules (the local swarm's version quota, deploy.ts, outlasts a whole run). */
const fixtures = ['hello-world', 'test-module', 'vtta-core'] as const

/**
 * Image URLs unique across every drill of the run: a URL repeated from an earlier drill is an edge cache
 * hit that still names the datacenter which served it then (a drill once saw lon1 "serve" while dead).
 */
let nextImage = 0
const runNonce = Date.now().toString(36)

export function underLoad(target: LoadTarget, webhookUrl?: () => string) {
  const images = steadyLoad({
    url: '',
    clients: 2,
    pauseMs: 100,
    maxMs: 900_000,
    urlFor: () => `${target.edge}/img/width=96,format=webp/${target.imageUrl(`${runNonce}-${nextImage++}`)}`,
    headers: target.headers,
  })
  const accepted: Array<{ version: string; title: string; at: number }> = []
  /** The release path's own requests that failed (5xx or no answer), and deliveries answered 503. */
  const releaseFailures: unknown[] = []
  let redelivered = 0
  let releasing = true
  const releases = (async () => {
    while (releasing) {
      const version = `5.0.${nextRelease}`
      const fixture = fixtures[nextRelease++ % fixtures.length]!
      const delivery = await releaseDelivery(fixture, { gitHubUrl: target.github, version })
      await registerRelease(target.github, delivery.spec)
      // Foundry v9 manifests (vtta-core 2.0.3) name the module `name`; v10 and later `id`.
      const manifest = releaseManifest(delivery.spec) as { id?: string; name?: string; title: string }
      const id = manifest.id ?? manifest.name
      const title = manifest.title
      for (let attempt = 1; attempt <= 30; attempt++) {
        const res = await postDelivery(target.edge, delivery, { headers: target.headers }).catch(() => null)
        if (res?.status === 202) {
          accepted.push({ version, title: `${title} ${version}`, at: Date.now() })
          break
        }
        // 503: not stored anywhere; GitHub would redeliver. Anything else is a failure.
        if (res?.status === 503) redelivered++
        else releaseFailures.push({ delivery: version, status: res?.status ?? 'error' })
        await sleep(1_000)
      }
      const deadline = Date.now() + 120_000
      let published = false
      while (!published && Date.now() < deadline) {
        const res = await fetch(`${target.edge}/modules/${id}/${version}/module.json`, {
          headers: target.headers,
        }).catch(() => null)
        published = res?.status === 200
        if (!res || res.status >= 500)
          releaseFailures.push({ manifest: version, status: res?.status ?? 'error' })
        if (!published) await sleep(500)
      }
      if (!published) releaseFailures.push({ manifest: version, status: 'not published within 120 s' })
    }
  })()

  return {
    async stop(): Promise<LoadFigures> {
      releasing = false
      await releases
      const answers = await images.stop()
      const titles = accepted.map((a) => a.title)
      const announced = async () => {
        const calls = (await recordedCalls(target.discord)).filter((c) => c.status < 300)
        const url = webhookUrl?.()
        const mine = url ? calls.filter((c) => url.includes(`/${c.webhookId}/${c.token}`)) : calls
        return titles.map((t) => mine.filter((c) => embedTitles(c).includes(t)).length)
      }
      // Long enough for a redelivery after the notifier's ack wait, when a task stopped mid-announcement.
      const deadline = Date.now() + 180_000
      let counts = await announced()
      while (counts.some((n) => n === 0) && Date.now() < deadline) {
        await sleep(1_000)
        counts = await announced()
      }
      await sleep(2_000)
      counts = await announced()
      return {
        answers,
        served: answers.length - failed(answers).length,
        failed: failed(answers).length + releaseFailures.length,
        retried: retried(answers).length + redelivered,
        accepted: accepted.map((a) => a.version),
        announcedOnce: counts.filter((n) => n === 1).length,
        announcedTwice: counts.filter((n) => n > 1).length,
        unannounced: accepted
          .filter((_, i) => counts[i] === 0)
          .map((a) => ({ version: a.version, acceptedAt: a.at })),
        failures: [...failed(answers), ...releaseFailures].slice(0, 5),
      }
    },
  }
}

export const describeFigures = (drill: string, f: LoadFigures, convergeMs?: number) =>
  `${drill}: image requests served ${f.served}; requests retried ${f.retried}, failed ${f.failed}; releases accepted ${f.accepted.length}, announced once ${f.announcedOnce}, more than once ${f.announcedTwice}${convergeMs === undefined ? '' : `; converged in ${(convergeMs / 1000).toFixed(0)} s`}`
