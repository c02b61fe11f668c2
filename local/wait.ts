/** Polls until an HTTP endpoint answers 2xx, a process dies, or time runs out. */
import { setTimeout as sleep } from 'node:timers/promises'
import { fetchFailure } from '#shared/error-message.ts'

export async function waitForHttp(
  url: string,
  opts: { timeoutMs: number; what: string; abort?: Promise<string> }
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs
  let aborted: string | undefined
  void opts.abort?.then((reason) => (aborted = reason))
  let last = 'no answer'
  while (Date.now() < deadline) {
    if (aborted) throw new Error(`${opts.what}: ${aborted}`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) })
      await res.body?.cancel()
      if (res.ok) return
      last = `HTTP ${res.status}`
    } catch (error) {
      last = fetchFailure(error)
    }
    await sleep(100)
  }
  throw new Error(`${opts.what}: not ready after ${opts.timeoutMs} ms (${url}: ${last})`)
}
