/**
 * What /proc says about processes: which of a group are still running, their command lines, the CPU
 * time they have used.
 */
import { readdirSync, readFileSync } from 'node:fs'

const CLOCK_TICKS_PER_SECOND = 100 // getconf CLK_TCK on Linux

/** /proc/<pid>/stat after "pid (comm) ": comm may contain spaces, so split after the last ')'. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** CPU milliseconds (user + system, all threads) a process has used so far. */
export function cpuMs(pid: number): number {
  const fields = statFields(pid)
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND
}

/**
 * CPU milliseconds the whole machine has spent busy so far (every processor, every process: /proc/stat
 * less idle and iowait): with a process's own, what others took meanwhile. NaN where there is no /proc.
 */
export function machineBusyMs(): number {
  let line: string
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  } catch {
    return NaN
  }
  const ticks = line.trim().split(/\s+/).slice(1).map(Number)
  // user, nice, system, irq, softirq, steal: not idle (3) or iowait (4); guest time is in user already.
  const busy = [0, 1, 2, 5, 6, 7].reduce((n, i) => n + (ticks[i] ?? NaN), 0)
  return (busy * 1000) / CLOCK_TICKS_PER_SECOND
}

/**
 * Which processes of a group are still running. Zombies do not count: an orphaned grandchild
 * (workerd) stays a zombie until init reaps it, holding no port and no memory.
 */

export function liveProcessesInGroup(pgid: number): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    // No /proc (macOS): signal 0 tells whether any member, zombie or not, exists.
    try {
      process.kill(-pgid, 0)
      return [pgid]
    } catch {
      return []
    }
  }
  return entries.map(Number).filter((pid) => {
    try {
      const [state, , pgrp] = statFields(pid)
      return Number(pgrp) === pgid && state !== 'Z'
    } catch {
      return false
    }
  })
}

/** A process's command line as argv, or undefined once it has gone (or where there is no /proc). */
export function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1)
  } catch {
    return undefined
  }
}
