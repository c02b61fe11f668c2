/**
 * Steering decision cost inside workerd (the bench Worker on Miniflare, bench/worker-process.ts): 8
 * datacenters, a health filter, 1,024 clients. Rows: `distance`, one steer() ranking per decision;
 * `measured`, what the request path does with measurements (the edge location from request.cf, then
 * latency/choose.ts from a warmed table, the choice committed); `measured-choice`, the same for the
 * clients with more than one candidate only, so every decision takes the measured path. workerd's
 * clock only moves on I/O, so the cost is measured from outside: a request making n decisions minus a
 * request making none, median of `rounds`. Goal: < 20 µs.
 */
import { z } from 'zod'
import { startBenchWorker } from './worker-process.ts'
import { printTable } from './table.ts'

const DECISIONS = 200_000
const modes = ['distance', 'measured', 'measured-choice'] as const

const replySchema = z.object({ checksum: z.number(), measured: z.number() })

export async function benchSteering({ rounds: count = 7 } = {}): Promise<void> {
  const worker = await startBenchWorker('steering-bench', 'steering-worker.ts', {}, '/?n=0')
  try {
    const run = async (n: number, mode: (typeof modes)[number]) => {
      const t0 = performance.now()
      const reply = replySchema.parse(await (await fetch(`${worker.url}/?n=${n}&mode=${mode}`)).json())
      return { ms: performance.now() - t0, measured: reply.measured }
    }
    const rows: Array<[string, string | number]> = [['decisions per round', DECISIONS]]
    for (const mode of modes) {
      await run(DECISIONS, mode) // warm-up: JIT
      const rounds: number[] = []
      let measured = 0
      for (let i = 0; i < count; i++) {
        const empty = await run(0, mode)
        const full = await run(DECISIONS, mode)
        rounds.push(((full.ms - empty.ms) * 1000) / DECISIONS)
        measured = full.measured
      }
      rounds.sort((a, b) => a - b)
      rows.push(
        [`${mode}: µs per decision, median of ${count}`, rounds[Math.floor(count / 2)]!],
        [`${mode}: µs per decision, best / worst`, `${rounds[0]!.toFixed(2)} / ${rounds.at(-1)!.toFixed(2)}`]
      )
      if (mode !== 'distance')
        rows.push([
          `${mode}: decisions ranked by measurement`,
          `${((100 * measured) / DECISIONS).toFixed(0)} %`,
        ])
    }
    rows.push(['goal', 'under 20 µs'])
    printTable(
      'steering decision inside workerd (8 datacenters, health filter, 1,024 clients)',
      ['measure', 'value'],
      rows
    )
  } finally {
    await worker.stop()
  }
}
