/** Per-isolate counters of the edge, exposed in /status.json (there are no shared metrics in a Worker). */
const counters = {
  /** Set by the first request: at module scope workerd's clock reads 0 (time only moves in a request). */
  since: 0,
  requests: 0,
  /** Answered from the edge cache (not logged line by line). */
  cacheHits: 0,
  /** Requests answered by each datacenter. */
  servedBy: {} as Record<string, number>,
  /** Requests that another datacenter answered after the first choice failed. */
  failovers: 0,
  /** Requests steered while no datacenter was healthy. */
  fallbacks: 0,
  /** Requests that no datacenter could answer. */
  failures: 0,
}

export type EdgeCounter = 'requests' | 'cacheHits' | 'failovers' | 'fallbacks' | 'failures'

/** Marks the isolate's first request, the moment counting started. */
function started(): void {
  if (counters.since === 0) counters.since = Date.now()
}

export function count(counter: EdgeCounter): void {
  started()
  counters[counter]++
}

export function countServed(dc: string): void {
  started()
  counters.servedBy[dc] = (counters.servedBy[dc] ?? 0) + 1
}

export function edgeCounters() {
  started()
  return { ...counters, servedBy: { ...counters.servedBy } }
}
