import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { cpuCgroupDir, createCpuCap } from '../../local/cpu-cap.ts'
import { cpuMs } from '../../local/process-table.ts'

// /proc/self/mountinfo lines: a host's (cpu alone, cpuacct apart), a distribution's (cpu,cpuacct
// together) and a container's (the mount shows the hierarchy from /docker/abc down).
const hostMounts = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n')
const combinedMounts =
  '27 23 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct'
const containerMounts =
  '600 590 0:29 /docker/abc /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime master:9 - cgroup cgroup rw,cpu'
const v2Only = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw'

describe('cpuCgroupDir', () => {
  it("finds this process's group in the cpu controller's mount, not cpuacct's", () => {
    expect(cpuCgroupDir(hostMounts, '2:cpuacct:/\n1:cpu:/\n0::/')).toEqual({
      ok: true,
      dir: '/sys/fs/cgroup/cpu',
    })
    expect(cpuCgroupDir(combinedMounts, '4:cpu,cpuacct:/user.slice/bench\n0::/')).toEqual({
      ok: true,
      dir: '/sys/fs/cgroup/cpu,cpuacct/user.slice/bench',
    })
  })

  it("takes the group relative to the mount's root, as in a container", () => {
    expect(cpuCgroupDir(containerMounts, '3:cpu:/docker/abc/inner')).toEqual({
      ok: true,
      dir: '/sys/fs/cgroup/cpu/inner',
    })
    const outside = cpuCgroupDir(containerMounts, '3:cpu:/elsewhere')
    expect(outside.ok).toBe(false)
  })

  it('says why there is no group with cgroup v2 alone', () => {
    const result = cpuCgroupDir(v2Only, '0::/user.slice')
    expect(result.ok).toBe(false)
    expect(!result.ok && result.reason).toContain('cgroup v1 cpu controller')
  })
})

describe('createCpuCap', () => {
  it('holds a busy process to its share and removes its group, or says why it cannot cap', async () => {
    const result = createCpuCap('cpu-cap-test', 0.2)
    if (!result.ok) {
      // Not root, or no cgroup v1 cpu controller: the bench then runs uncapped and prints this.
      expect(result.reason).toMatch(/cgroup|root|Linux/)
      return
    }
    const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })
    try {
      result.cap.add(busy.pid!)
      expect(readFileSync(`${result.cap.dir}/cgroup.procs`, 'utf8').trim()).toBe(String(busy.pid))
      await sleep(300) // its start-up, before the quota is what it spends
      const [cpu0, t0] = [cpuMs(busy.pid!), performance.now()]
      await sleep(1_500)
      const cores = (cpuMs(busy.pid!) - cpu0) / (performance.now() - t0)
      // Uncapped it would take a whole core.
      expect(cores).toBeLessThan(0.3)
    } finally {
      result.cap.remove()
      busy.kill('SIGKILL')
    }
    expect(existsSync(result.cap.dir)).toBe(false)
    expect(() => result.cap.remove()).not.toThrow()
  })
})
