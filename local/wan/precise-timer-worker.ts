/**
 * The thread behind PreciseTimer (precise-timer.ts): sleeps in Atomics.wait until the deadline the
 * main thread wrote into shared memory (a monotonic clock in ms, process.hrtime), then posts one
 * message, and sleeps until the main thread writes the next deadline (its generation changes).
 * Atomics.wait's timeout is not bound to the event loop's millisecond clock.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { z } from 'zod'

const { shared, leadMs } = z
  .object({ shared: z.instanceof(SharedArrayBuffer), leadMs: z.number().min(0) })
  .parse(workerData)
/** [0]: generation, bumped by the main thread after every change of the deadline. */
const generation = new Int32Array(shared, 0, 1)
/** [0]: the deadline (ms on the process.hrtime clock), 0 for none. */
const deadline = new Float64Array(shared, 8, 1)

const nowMs = () => Number(process.hrtime.bigint()) / 1e6
let fired = -1
for (;;) {
  const g = Atomics.load(generation, 0)
  const due = deadline[0]!
  if (due > 0 && g !== fired) {
    const wait = due - leadMs - nowMs()
    if (wait <= 0) {
      fired = g
      parentPort!.postMessage(g)
    } else Atomics.wait(generation, 0, g, wait)
  } else Atomics.wait(generation, 0, g)
}
