/**
 * Bounded work, three limits:
 * - at most `concurrency` transforms run at once (libvips works on the libuv thread pool; more than
 *   the cores only adds memory and latency);
 * - at most `2 x concurrency` requests hold a source image in memory (being fetched, waiting for a
 *   transform, or transforming), so fetching overlaps transforming without a queue of multi-megabyte
 *   sources piling up: memory stays near 2 x concurrency x the source size, plus the origin cache;
 * - at most `queueLimit` requests wait beyond the running ones. Past that a request is refused at once
 *   with `busy`: the edge tries another datacenter rather than waiting behind unbounded latency.
 */
class Semaphore {
  readonly #limit: number
  #held = 0
  readonly #waiting: Array<() => void> = []

  constructor(limit: number) {
    this.#limit = limit
  }

  get held(): number {
    return this.#held
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#held >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    else this.#held++
    try {
      return await work()
    } finally {
      // The slot passes straight to the next waiter (first come, first served), so #held stays counted.
      const next = this.#waiting.shift()
      if (next) next()
      else this.#held--
    }
  }
}

export class TransformSlots {
  readonly concurrency: number
  readonly queueLimit: number
  #admitted = 0
  readonly #transforms: Semaphore
  readonly #sources: Semaphore

  constructor(concurrency: number, queueLimit: number) {
    this.concurrency = concurrency
    this.queueLimit = queueLimit
    this.#transforms = new Semaphore(concurrency)
    this.#sources = new Semaphore(concurrency * 2)
  }

  /** Requests admitted and not yet finished. */
  get admitted(): number {
    return this.#admitted
  }

  get running(): number {
    return this.#transforms.held
  }

  /** Admitted requests not transforming yet: waiting, or fetching their source. */
  get queued(): number {
    return this.#admitted - this.running
  }

  /** Admits one request, or returns false when `concurrency + queueLimit` are already admitted. */
  tryAdmit(): boolean {
    if (this.#admitted >= this.concurrency + this.queueLimit) return false
    this.#admitted++
    return true
  }

  /** Ends an admitted request, whatever happened to it. */
  leave(): void {
    this.#admitted--
  }

  /** Runs `work` (fetch, then transform) while holding one of the source slots. */
  withSource<T>(work: () => Promise<T>): Promise<T> {
    return this.#sources.run(work)
  }

  /** Runs `work` in a transform slot. */
  transform<T>(work: () => Promise<T>): Promise<T> {
    return this.#transforms.run(work)
  }
}
