/** The default transform concurrency is sized by memory as well as by cores. */
import { describe, expect, it } from 'vitest'
import {
  BASELINE_BYTES,
  TRANSFORM_PEAK_BYTES,
  cgroupMemoryLimit,
  planConcurrency,
} from '../../../backend/images/memory-budget.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

describe('the default image concurrency', () => {
  it('is what a 1 GiB task holds at the measured peak, not the host cores', () => {
    const plan = planConcurrency({ cores: 16, cgroupLimit: GiB, originCacheBytes: 64 * MiB })
    // (1024 - 160 - 64) MiB / 192 MiB = 4.2: four transforms, where the cores alone would give 16.
    expect(plan).toMatchObject({ concurrency: 4, memorySource: 'cgroup', memoryBytes: GiB })
    expect(plan.concurrency * TRANSFORM_PEAK_BYTES + BASELINE_BYTES + 64 * MiB).toBeLessThanOrEqual(GiB)
  })

  it('is the cores when memory is plentiful', () => {
    expect(planConcurrency({ cores: 2, cgroupLimit: 8 * GiB, originCacheBytes: 64 * MiB }).concurrency).toBe(
      2
    )
  })

  it('takes IMAGE_MEMORY_BUDGET_BYTES over the cgroup, and the machine when there is no cgroup limit', () => {
    expect(
      planConcurrency({ cores: 8, budgetBytes: 2 * GiB, cgroupLimit: GiB, originCacheBytes: 0 })
    ).toMatchObject({ concurrency: 8, memorySource: 'IMAGE_MEMORY_BUDGET_BYTES' })
    expect(
      planConcurrency({ cores: 8, cgroupLimit: undefined, totalMemory: 512 * MiB, originCacheBytes: 0 })
    ).toMatchObject({ concurrency: 1, memorySource: 'os.totalmem' })
  })

  it('never goes below one transform', () => {
    expect(
      planConcurrency({ cores: 4, cgroupLimit: 128 * MiB, originCacheBytes: 64 * MiB }).concurrency
    ).toBe(1)
  })

  it('reads cgroup v2, then v1, and treats "max" and v1 huge values as no limit', () => {
    const files = (entries: Record<string, string>) => (path: string) => {
      if (path in entries) return entries[path]!
      throw new Error('ENOENT')
    }
    expect(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': '1073741824\n' }))).toBe(GiB)
    expect(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' }))).toBeUndefined()
    expect(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '536870912' }))).toBe(
      512 * MiB
    )
    expect(
      cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' }))
    ).toBeUndefined()
    expect(cgroupMemoryLimit(files({}))).toBeUndefined()
  })
})
