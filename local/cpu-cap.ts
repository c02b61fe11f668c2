/**
 * A CPU cap for processes: a cgroup of the cgroup v1 cpu controller whose CFS quota lets its processes
 * (every thread of each) use at most `cores` cores in every period, however idle the rest of the machine
 * is. The bridge benchmark gives each workerd process one, so that a host's thread saturates where one
 * machine's share would, not where this machine's cores do (bench/bridge-shards.ts).
 *
 * It needs Linux with the cgroup v1 cpu controller mounted and the right to write it (root). Where either
 * is missing, createCpuCap says so (`ok: false`, a reason to print) and the caller runs uncapped. The group
 * is made under this process's own cpu cgroup, named after its pid; `remove` moves whatever is left in it
 * back to that cgroup and removes it, and may be called more than once.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join, posix } from 'node:path'

export interface CpuCap {
  /** At most this many cores, summed over the group's processes. */
  readonly cores: number
  /** The group's directory. */
  readonly dir: string
  /** Moves a process, every thread of it, into the group. Throws when the kernel refuses (it has exited). */
  add(pid: number): void
  /** Moves the group's processes back to this process's cgroup and removes the group. */
  remove(): void
}

export type CpuCapResult = { ok: true; cap: CpuCap } | { ok: false; reason: string }

export type CpuCgroupDir = { ok: true; dir: string } | { ok: false; reason: string }

/** /proc's escapes in a path (a space is \040). */
const unescapeOctal = (path: string) =>
  path.replace(/\\([0-7]{3})/g, (_, code: string) => String.fromCharCode(parseInt(code, 8)))

/**
 * The directory of this process's cgroup in the cgroup v1 cpu hierarchy, from /proc/self/mountinfo and
 * /proc/self/cgroup. A mount may show only part of the hierarchy (a container's): the cgroup's path is
 * taken relative to the mount's root.
 */
export function cpuCgroupDir(mountinfo: string, selfCgroup: string): CpuCgroupDir {
  // "<id> <parent> <dev> <root> <mount point> <options> [optional...] - <fstype> <source> <super options>"
  const mount = mountinfo
    .split('\n')
    .map((line) => line.split(' - '))
    .map(([before = '', after = '']) => ({ fields: before.split(' '), tail: after.split(' ') }))
    .find(
      ({ tail: [fstype, , superOptions = ''] }) =>
        fstype === 'cgroup' && superOptions.split(',').includes('cpu')
    )
  if (!mount)
    return { ok: false, reason: 'no cgroup v1 cpu controller is mounted (cgroup v2 only, or not Linux)' }
  const root = unescapeOctal(mount.fields[3] ?? '/')
  const mountPoint = unescapeOctal(mount.fields[4] ?? '')
  // "<hierarchy id>:<controllers>:<path>"; the path may itself contain ':'.
  const path = selfCgroup
    .split('\n')
    .map((line) => line.split(':'))
    .find(([, controllers = '']) => controllers.split(',').includes('cpu'))
    ?.slice(2)
    .join(':')
  if (path === undefined) return { ok: false, reason: 'this process is in no cgroup of the cpu controller' }
  const relative = posix.relative(root, path)
  if (relative.startsWith('..'))
    return { ok: false, reason: `this process's cpu cgroup ${path} is outside the mount's root ${root}` }
  return { ok: true, dir: join(mountPoint, relative) }
}

/** Reads a file of /proc, or undefined where there is none. */
function procText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

/** The pids in a group (cgroup.procs), none once it is gone. */
function procsOf(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * A new group `vtta-<name>-<pid>` capped at `cores` cores: a quota of cores x period every period.
 * A short period makes the cap a slower thread rather than a full-speed one that stops for most of each
 * period (the kernel's default period, 100 ms, would stall the group for 70 ms at a time at 0.3 core).
 */
export function createCpuCap(name: string, cores: number, periodUs = 10_000): CpuCapResult {
  if (!(cores > 0)) return { ok: false, reason: `a cap of ${cores} cores is no cap` }
  const mountinfo = procText('/proc/self/mountinfo')
  const selfCgroup = procText('/proc/self/cgroup')
  if (mountinfo === undefined || selfCgroup === undefined)
    return { ok: false, reason: 'no /proc/self/mountinfo or /proc/self/cgroup (not Linux)' }
  const parent = cpuCgroupDir(mountinfo, selfCgroup)
  if (!parent.ok) return parent
  const dir = join(parent.dir, `vtta-${name}-${process.pid}`)
  try {
    mkdirSync(dir)
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException
    const root = code === 'EACCES' || code === 'EPERM' ? ' (root is needed)' : ''
    return { ok: false, reason: `cannot create ${dir}${root}: ${message}` }
  }
  const remove = () => {
    for (const pid of procsOf(dir))
      try {
        writeFileSync(join(parent.dir, 'cgroup.procs'), String(pid))
      } catch {
        // It exited meanwhile: nothing to move.
      }
    try {
      rmdirSync(dir)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }
  try {
    writeFileSync(join(dir, 'cpu.cfs_period_us'), String(periodUs))
    writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(Math.round(cores * periodUs)))
  } catch (error) {
    remove()
    return { ok: false, reason: `cannot set the quota of ${dir}: ${(error as Error).message}` }
  }
  return {
    ok: true,
    cap: {
      cores,
      dir,
      // cgroup.procs, not tasks: the kernel moves every thread of the process.
      add: (pid) => writeFileSync(join(dir, 'cgroup.procs'), String(pid)),
      remove,
    },
  }
}
