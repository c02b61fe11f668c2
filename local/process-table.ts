/**
 * Which processes of a group are still running. Zombies do not count: an orphaned grandchild
 * (workerd) stays a zombie until init reaps it, holding no port and no memory.
 */
import { readdirSync, readFileSync } from 'node:fs'

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
      // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces, so split after ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
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
