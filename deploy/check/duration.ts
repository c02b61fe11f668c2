/** Go/compose durations ("60s", "1m0s", "500ms", "1h30m") in milliseconds; NaN when unparseable. */
export function durationMs(value: unknown): number {
  if (typeof value === 'number') return value / 1e6 // compose reads a bare number as nanoseconds
  if (typeof value !== 'string' || value.trim() === '') return Number.NaN
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  }
  let rest = value.trim()
  let total = 0
  while (rest !== '') {
    const part = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest)
    if (!part) return Number.NaN
    total += Number(part[1]) * (units[part[2] as string] as number)
    rest = rest.slice(part[0].length)
  }
  return total
}
