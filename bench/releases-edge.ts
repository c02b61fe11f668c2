/**
 * Webhook to announcement through the edge on the local platform: a signed GitHub delivery POSTed
 * to the edge, until the Discord stand-in records the announcement (JetStream, release service,
 * registry, notifier in between). Goal: p50 under 300 ms locally.
 */
import { setTimeout } from 'node:timers/promises'
import type { Platform } from '../local/platform.ts'
import { standIns } from '../local/addresses.ts'
import {
  postDelivery,
  registerRelease,
  releaseDelivery,
  releaseManifest,
} from '../local/stand-ins/github/index.ts'
import { embedTitles, recordedCalls } from '../local/stand-ins/discord.ts'
import { percentile } from './load.ts'
import { printTable } from './table.ts'

/** When the Discord stand-in received the announcement (its own clock: polling does not add to it). */
export async function announcedAt(title: string, deadline: number): Promise<number> {
  while (Date.now() < deadline) {
    const calls = await recordedCalls(standIns.discord.url)
    const call = calls.find((c) => c.status < 300 && embedTitles(c).includes(title))
    if (call) return call.at
    await setTimeout(20)
  }
  throw new Error(`${title} was not announced in time`)
}

export async function benchReleasesThroughEdge(platform: Platform, runs = 20): Promise<void> {
  const rows: (string | number)[][] = []
  for (const concurrency of [1, 4]) {
    const latencies: number[] = []
    const acks: number[] = []
    for (let batch = 0; batch < runs / concurrency; batch++) {
      await Promise.all(
        Array.from({ length: concurrency }, async (_, i) => {
          // Each release a new module version; fixtures in turn so concurrent ones never race one module.
          const fixture = (['hello-world', 'test-module', 'ddb-importer', 'item-piles'] as const)[i]!
          const version = `9.${concurrency}.${batch}`
          const delivery = await releaseDelivery(fixture, { gitHubUrl: standIns.github.url, version })
          await registerRelease(standIns.github.url, delivery.spec)
          const { title } = releaseManifest(delivery.spec) as { title: string }
          const started = Date.now()
          const res = await postDelivery(platform.edgeUrl, delivery)
          acks.push(Date.now() - started)
          if (res.status !== 202) throw new Error(`delivery answered ${res.status}: ${await res.text()}`)
          latencies.push((await announcedAt(`${title} ${version}`, started + 30_000)) - started)
        })
      )
    }
    latencies.sort((a, b) => a - b)
    acks.sort((a, b) => a - b)
    rows.push([
      concurrency,
      latencies.length,
      percentile(acks, 50),
      percentile(acks, 99),
      percentile(latencies, 50),
      percentile(latencies, 99),
    ])
  }
  printTable(
    'GitHub webhook -> Discord announcement through the edge (goal p50 < 300 ms)',
    ['concurrency', 'releases', '202 p50 ms', '202 p99 ms', 'announced p50 ms', 'announced p99 ms'],
    rows
  )
}
