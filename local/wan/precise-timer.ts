/**
 * Wake-ups with sub-millisecond precision, for the WAN relay's delays. Node's timers count whole
 * milliseconds on the event loop's cached clock: measured here, a 2.5 ms setTimeout fired 0.34 ms early
 * or 0.66 ms late depending on where the loop's millisecond fell, and a relay's round trips lock onto
 * that grid, so the 5 ms leg measured 4.5 or 6.8 ms. A worker thread sleeping in Atomics.wait (which
 * takes a fractional timeout) and posting a message wakes the loop within about 0.15 ms instead, for
 * one message a wake-up: every callback due by then runs on the same wake-up.
 *
 * Times are ms on process.hrtime's monotonic clock (`nowMs`), which both threads share.
 */
import { Worker } from 'node:worker_threads'

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6

/**
 * The thread wakes this long before the deadline, and callbacks due within it run at once: measured,
 * its message reaches the loop about 0.1 ms after it is posted, and the relay spends about 0.07 ms
 * a direction reading and writing, so a delay then lands within about 0.1 ms of its due time.
 */
export const PRECISION_MS = 0.2

export class PreciseTimer {
  readonly #worker: Worker
  readonly #generation: Int32Array
  readonly #deadline: Float64Array
  readonly #waiting = new Map<() => void, number>()
  #armed = 0

  constructor() {
    const shared = new SharedArrayBuffer(16)
    this.#generation = new Int32Array(shared, 0, 1)
    this.#deadline = new Float64Array(shared, 8, 1)
    this.#worker = new Worker(new URL('./precise-timer-worker.ts', import.meta.url), {
      workerData: { shared, leadMs: PRECISION_MS },
    })
    // The relay's sockets keep the process alive, not this thread.
    this.#worker.unref()
    this.#worker.on('message', () => this.#wake())
  }

  /** Runs `callback` once at `due` (nowMs clock); a callback already waiting is moved to `due`. */
  schedule(callback: () => void, due: number): void {
    this.#waiting.set(callback, due)
    if (this.#armed === 0 || due < this.#armed) this.#arm(due)
  }

  cancel(callback: () => void): void {
    this.#waiting.delete(callback)
  }

  #arm(due: number): void {
    this.#armed = due
    this.#deadline[0] = due
    Atomics.add(this.#generation, 0, 1)
    Atomics.notify(this.#generation, 0)
  }

  #wake(): void {
    const now = nowMs()
    const due: Array<() => void> = []
    let next = 0
    for (const [callback, at] of this.#waiting) {
      if (at <= now + PRECISION_MS) due.push(callback)
      else if (next === 0 || at < next) next = at
    }
    for (const callback of due) this.#waiting.delete(callback)
    // Re-armed before the callbacks run: they schedule their next items against this deadline.
    this.#arm(next)
    for (const callback of due) callback()
  }

  async close(): Promise<void> {
    this.#waiting.clear()
    await this.#worker.terminate()
  }
}
