/**
 * Foundation benchmark: what each hop of the platform costs on the local platform.
 *   (a) web /health, direct                      the backend alone
 *   (b) edge /health                             the edge alone (workerd, no datacenter)
 *   (c) edge /  -> nearest web service           edge + one HTTP hop
 *   (d) edge /health/fra -> NatsBridge -> NATS   edge + Durable Object + NATS request/reply
 * Ratios against the edge alone (b), measured in the same run: c/b (the HTTP hop to a datacenter),
 * d/b (the Durable Object and NATS round trip). (a) shows how little of it is the backend's own work.
 */
import type { Platform } from '../local/platform.ts'
import { interleaved } from './load.ts'
import { printTable } from './table.ts'

export async function benchEdgePaths(
  platform: Platform,
  { rounds = 3, roundMs = 2_000 } = {}
): Promise<void> {
  const webSpec = platform.processes.find((p) => p.spec.dc === 'fra' && p.spec.service === 'web')!.spec
  const web = webSpec.url
  // The web service answers only with the edge's proof: present the one it was given.
  const proof = {
    'cf-access-client-id': webSpec.env.ORIGIN_CLIENT_ID ?? '',
    'cf-access-client-secret': webSpec.env.ORIGIN_CLIENT_SECRET ?? '',
  }
  const geo = { 'x-client-geo': '50.11,8.68' }
  const targets = [
    { name: 'a: web /health (direct)', url: `${web}/health`, headers: proof },
    { name: 'b: edge /health', url: `${platform.edgeUrl}/health` },
    { name: 'c: edge / -> web', url: `${platform.edgeUrl}/`, headers: geo },
    { name: 'd: edge /health/fra -> NATS', url: `${platform.edgeUrl}/health/fra` },
  ]
  for (const concurrency of [1, 4]) {
    const results = await interleaved(targets, { concurrency, rounds, roundMs })
    const r = (i: number) => results.get(targets[i]!.name)!
    printTable(
      `edge paths, concurrency ${concurrency} (median of ${rounds} interleaved rounds)`,
      ['target', 'rps', 'p50 ms', 'p99 ms', 'requests', 'errors'],
      targets.map((t) => {
        const x = results.get(t.name)!
        return [t.name, x.rps, x.p50, x.p99, x.requests, x.errors]
      })
    )
    printTable(
      `ratios, concurrency ${concurrency}`,
      ['ratio', 'throughput', 'p50 latency'],
      [
        ['c/b (edge + HTTP hop vs edge alone)', r(2).rps / r(1).rps, r(2).p50 / r(1).p50],
        ['d/b (edge + NATS bridge vs edge alone)', r(3).rps / r(1).rps, r(3).p50 / r(1).p50],
      ]
    )
  }
}
