/**
 * The default transform concurrency: as many transforms as cores, but no more than the memory of the
 * container holds at their peak. The memory limit is the cgroup's (`memory.max` in cgroup v2,
 * `memory.limit_in_bytes` in v1), else the machine's, unless IMAGE_MEMORY_BUDGET_BYTES names it.
 */
import { readFileSync } from 'node:fs'
import { availableParallelism, totalmem } from 'node:os'

const MiB = 1024 * 1024

/**
 * Resident memory one transform may add at its peak. Measured (sharp 0.35.5, one libvips thread,
 * cache off): a 48 MP JPEG to a 16 MP WebP (MAX_OUTPUT_PIXELS) with blur 250 added 165 MiB; a 64 px PNG
 * padded to 4000x4000 with blur 250, 125 MiB. Rounded up for the source (up to 20 MiB) and the reply.
 */
export const TRANSFORM_PEAK_BYTES = 192 * MiB
/** Node, V8, sharp and libvips before any transform, with headroom: the service idles at about 110 MiB. */
export const BASELINE_BYTES = 160 * MiB

/** cgroup v1 reports "no limit" as a huge number (a page-rounded 2^63). */
const UNLIMITED = 2 ** 60

/** The container's memory limit in bytes, or undefined when none is set. */
export function cgroupMemoryLimit(
  read: (path: string) => string = (path) => readFileSync(path, 'utf8')
): number | undefined {
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let text: string
    try {
      text = read(path).trim()
    } catch {
      continue
    }
    if (text === 'max') return undefined
    const bytes = Number(text)
    if (Number.isSafeInteger(bytes) && bytes > 0 && bytes < UNLIMITED) return bytes
    return undefined
  }
  return undefined
}

export interface ConcurrencyPlan {
  concurrency: number
  cores: number
  /** The memory the plan was made for, and where it came from. */
  memoryBytes: number
  memorySource: 'IMAGE_MEMORY_BUDGET_BYTES' | 'cgroup' | 'os.totalmem'
  /** What is left for transforms once the baseline and the origin cache are set aside. */
  transformBytes: number
}

/** min(cores, floor((memory - baseline - origin cache) / TRANSFORM_PEAK_BYTES)), at least 1. */
export function planConcurrency(opts: {
  budgetBytes?: number
  originCacheBytes: number
  cores?: number
  cgroupLimit?: number | undefined
  totalMemory?: number
}): ConcurrencyPlan {
  const cores = opts.cores ?? availableParallelism()
  const cgroup = 'cgroupLimit' in opts ? opts.cgroupLimit : cgroupMemoryLimit()
  const [memoryBytes, memorySource]: [number, ConcurrencyPlan['memorySource']] =
    opts.budgetBytes !== undefined
      ? [opts.budgetBytes, 'IMAGE_MEMORY_BUDGET_BYTES']
      : cgroup !== undefined
        ? [cgroup, 'cgroup']
        : [opts.totalMemory ?? totalmem(), 'os.totalmem']
  const transformBytes = Math.max(0, memoryBytes - BASELINE_BYTES - opts.originCacheBytes)
  const byMemory = Math.floor(transformBytes / TRANSFORM_PEAK_BYTES)
  return {
    concurrency: Math.max(1, Math.min(cores, byMemory)),
    cores,
    memoryBytes,
    memorySource,
    transformBytes,
  }
}
