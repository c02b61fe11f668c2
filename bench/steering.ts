/**
 * Steering decision cost inside workerd (the bench Worker on Miniflare, bench/worker-process.ts): 8
 * datacenters, a health filter, one ranking per decision. workerd's clock only moves on I/O, so the
 * cost is measured from outside: a request making n decisions minus a request making none, median
 * of `rounds`. Goal: < 20 µs.
 */
import { startBenchWorker } from './worker-process.ts'
import { printTable } from './table.ts'

const DECISIONS = 200_000

export async function benchSteering({ rounds: count = 7 } = {}): Promise<void> {
  const worker = await startBenchWorker('steering-bench', 'steering-worker.ts', {}, '/?n=0')
  try {
    const time = async (n: number) => {
      const t0 = performance.now()
      await (await fetch(`${worker.url}/?n=${n}`)).text()
      return performance.now() - t0
    }
    await time(DECISIONS) // warm-up: JIT
    const rounds: number[] = []
    for (let i = 0; i < count; i++) {
      const empty = await time(0)
      const full = await time(DECISIONS)
      rounds.push(((full - empty) * 1000) / DECISIONS)
    }
    rounds.sort((a, b) => a - b)
    printTable(
      'steering decision inside workerd (8 datacenters, health filter)',
      ['measure', 'value'],
      [
        ['decisions per round', DECISIONS],
        [`µs per decision, median of ${count}`, rounds[Math.floor(count / 2)]!],
        ['µs per decision, best / worst', `${rounds[0]!.toFixed(2)} / ${rounds.at(-1)!.toFixed(2)}`],
        ['goal', 'under 20 µs'],
      ]
    )
  } finally {
    await worker.stop()
  }
}
