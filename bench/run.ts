/**
 * `npm run bench`: every benchmark table. Not a test: it asserts nothing, it measures. The local
 * platform runs on its own state directory and a free edge port, so a running `npm start` is not
 * disturbed (its addresses are; stop it first).
 *
 *   npm run bench                                  every table, full length (the figures to quote)
 *   npm run bench -- --only images --only steering  some parts: steering, edge, images, releases,
 *                                                  world (issue #15's: the six datacenters, WAN on),
 *                                                  bridges (issue #16's: NatsBridge shards)
 *   npm run bench -- --quick                       short rounds: checks that the code runs end to
 *                                                  end; its figures are too noisy to quote
 *   npm run bench -- --only bridges --uncapped     bridges with its workerd processes on the machine's
 *                                                  cores, not capped at a thread's share each
 */
import { parseArgs } from 'node:util'
import { onLocalPlatform } from './local-platform.ts'
import { benchEdgePaths } from './edge-paths.ts'
import { benchSteering } from './steering.ts'
import { benchImagesBackend } from './images-backend.ts'
import {
  edgeImageTargets,
  imageOptions,
  measureBindingCosts,
  printEdgeImageGoals,
  startEdgeImageWorkers,
  type BindingCosts,
} from './image-edge.ts'
import { benchReleases } from './releases.ts'
import { benchReleasesThroughEdge } from './releases-edge.ts'
import { benchWorld, worldBenchDefaults } from './world.ts'
import { benchBridgeShards, bridgeBenchDefaults } from './bridge-shards.ts'

const parts = ['steering', 'edge', 'images', 'releases', 'world', 'bridges'] as const
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    uncapped: { type: 'boolean', default: false },
  },
})
const unknown = args.only?.filter((p) => !(parts as readonly string[]).includes(p)) ?? []
if (unknown.length) {
  console.error(`unknown part ${unknown.join(', ')}; parts: ${parts.join(', ')}`)
  process.exit(64)
}
const runs = (part: (typeof parts)[number]) => !args.only || args.only.includes(part)
const quick = args.quick
if (quick) console.log('--quick: short rounds; the figures are too noisy to quote')

if (runs('steering')) await benchSteering({ rounds: quick ? 3 : 7 })

if (runs('edge') || runs('images'))
  await onLocalPlatform(async (platform, originPort) => {
    if (runs('edge')) {
      await benchEdgePaths(platform, quick ? { rounds: 1, roundMs: 1_000 } : {})
      await benchReleasesThroughEdge(platform, quick ? 4 : 20)
    }
    if (runs('images')) {
      // The images benchmark's origin serves /files/photo.jpg on originPort; the Hono floor serves
      // the very bytes the edge answers for it.
      const sourceUrl = `http://127.0.0.1:${originPort}/files/photo.jpg`
      const workers = await startEdgeImageWorkers(
        platform,
        (edgeUrl) => `${edgeUrl}/img/${imageOptions(800, 80)}/${sourceUrl}?hit=1`
      )
      try {
        const results = await benchImagesBackend({
          originPort,
          extraTargets: (ctx) => edgeImageTargets(platform, workers, ctx),
          ...(quick ? { rounds: 1, roundMs: 1_500, idleMs: 5_000, memoryBursts: 1 } : {}),
        })
        const hit = await fetch(`${workers.hono.url}/bytes`)
        const imageBytes = (await hit.arrayBuffer()).byteLength
        const bindings = new Map<number, BindingCosts>()
        for (const { concurrency } of results)
          bindings.set(
            concurrency,
            await measureBindingCosts(workers, { imageBytes, concurrency, rounds: quick ? 3 : 5 })
          )
        printEdgeImageGoals(results, platform, workers, bindings)
      } finally {
        await workers.stop()
      }
    }
  })

// Its own three-node cluster and services on free ports: delivery as the edge publishes it -> Discord.
if (runs('releases')) await benchReleases(quick ? { releases: 10 } : {})

// The six-datacenter world with the WAN on, on its own state directory (bench/world.ts).
if (runs('world'))
  await benchWorld(
    quick
      ? { imageMisses: 5, registryReads: 5, publishes: 10, deliveries: 3, steeringMisses: 5 }
      : worldBenchDefaults
  )

// Its own nats-server, responder and workerd processes: throughput by (shards, processes), each
// process capped at a thread's share unless --uncapped.
if (runs('bridges'))
  await benchBridgeShards({
    ...bridgeBenchDefaults,
    ...(quick ? { rounds: 1, roundMs: 1_500 } : {}),
    ...(args.uncapped ? { hostCores: null } : {}),
  })
