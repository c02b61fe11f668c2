/**
 * Release pipeline latency: a GitHub delivery published to JetStream as the edge publishes it, until
 * the Discord stand-in receives the announcement — on a 3-node NATS cluster (R3 streams, KV and
 * object store), three release services and three notifiers on the same durable consumers, the
 * GitHub stand-in serving the fixture module (a small zip: this is the pipeline's own cost, not
 * download time). Also delivery → `packaged` event, the release service's share.
 */
import { setTimeout } from 'node:timers/promises'
import { connect } from '@nats-io/transport-node'
import { startNatsCluster } from '../test/support/nats-cluster.ts'
import { startPipeline, type Pipeline } from '../test/support/release-pipeline.ts'
import { packagedEventSchema, releaseEventsStream } from '#shared/releases.ts'
import { percentile } from './load.ts'
import { printTable } from './table.ts'
import { natsAuth } from '../test/support/nats-credentials.ts'

interface Sample {
  packagedMs: number
  announcedMs: number
}

export async function benchReleases(opts: { releases?: number; concurrency?: number } = {}): Promise<void> {
  const n = opts.releases ?? 60
  const cluster = await startNatsCluster('bench-releases')
  let pipeline: Pipeline | undefined
  try {
    const p = (pipeline = await startPipeline({
      natsUrls: cluster.urls,
      replicas: 3,
      releases: 3,
      notifiers: 3,
      web: false,
    }))
    // When each `packaged` event is published (a plain subscription sees every publish).
    const packagedAt = new Map<string, number>()
    const watcher = await connect({ servers: cluster.urls, ...natsAuth() })
    watcher.subscribe(releaseEventsStream.packaged, {
      callback: (_err, msg) => {
        const id = packagedEventSchema.parse(msg.json()).moduleId
        if (!packagedAt.has(id)) packagedAt.set(id, Date.now())
      },
    })
    let next = 0
    const one = async (): Promise<Sample> => {
      const i = next++
      const moduleId = `bench-module-${i}`
      const d = await p.gh.delivery('test-module', {
        version: '1.0.0',
        repositoryId: 970_000_000 + i,
        repo: `bench-${i}`,
        manifestPatch: { id: moduleId },
      })
      const t0 = Date.now()
      await p.publish(d)
      const deadline = t0 + 30_000
      for (;;) {
        const call = p
          .announcements()
          .find((c) => JSON.stringify(c.body).includes(`/modules/${moduleId}/module.json`))
        if (call) return { packagedMs: (packagedAt.get(moduleId) ?? NaN) - t0, announcedMs: call.at - t0 }
        if (Date.now() > deadline) throw new Error(`${moduleId}: no announcement after 30 s`)
        await setTimeout(2)
      }
    }
    const run = async (count: number, concurrency: number) => {
      const samples: Sample[] = []
      let left = count
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (left-- > 0) samples.push(await one())
        })
      )
      return samples
    }

    await run(5, 1) // warm-up: JIT, connections, first leader lookups
    const scenarios = [
      { name: 'one at a time', samples: await run(n, 1) },
      { name: `${opts.concurrency ?? 4} concurrent`, samples: await run(n, opts.concurrency ?? 4) },
    ]
    const row = (name: string, values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b)
      return [name, sorted.length, percentile(sorted, 50), percentile(sorted, 99), sorted.at(-1) ?? NaN]
    }
    printTable(
      'release pipeline: JetStream publish (as the edge) → Discord announcement; 3-node cluster, R3, 3 release services + 3 notifiers',
      ['scenario', 'releases', 'p50 ms', 'p99 ms', 'max ms'],
      scenarios.flatMap((s) => [
        row(
          `${s.name}: delivery → packaged event`,
          s.samples.map((x) => x.packagedMs)
        ),
        row(
          `${s.name}: delivery → Discord call`,
          s.samples.map((x) => x.announcedMs)
        ),
      ])
    )
    await watcher.close()
  } finally {
    await pipeline?.stop()
    await cluster.dispose()
  }
}
