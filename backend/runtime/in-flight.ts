/** Counts work in progress so shutdown can wait for it to finish. */
export class InFlight {
  #count = 0
  #waiters: Array<() => void> = []

  get count(): number {
    return this.#count
  }

  /** Runs `work` and counts it until it settles. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.#count++
    try {
      return await work()
    } finally {
      this.#count--
      if (this.#count === 0) for (const wake of this.#waiters.splice(0)) wake()
    }
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push(resolve))
  }
}
