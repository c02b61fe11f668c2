/**
 * `npm run swarm:down`: removes everything `npm run swarm:up` made: every engine and what runs in it,
 * the builder, the registry, the stand-ins, the namespaces, links and bridge, each node's disk (unmounted,
 * its loop device detached), and <LOCAL_DIR>/docker-swarm. Safe to run twice, or after a crash half-way through swarm:up.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { projectRoot } from '../platform-specs.ts'
import {
  leftoverEngineDirs,
  leftoverNodeDiskDirs,
  removeBridge,
  removeEngineFiles,
  removeNode,
  stopEngine,
} from './engines.ts'
import { builderOf } from './images.ts'
import { bridge, edgePort, swarmDir as swarmDirOf, swarmNodes } from './topology.ts'
import { attempt } from './command.ts'

function killPidFile(file: string): void {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim())
    if (pid > 0) process.kill(-pid, 'SIGTERM')
  } catch {
    // not running, or never started
  }
}

export async function swarmDown(localDir: string): Promise<void> {
  const swarmDir = swarmDirOf(localDir)
  // Engines of an interrupted run in another LOCAL_DIR (the namespaces and bridge are the same): found by
  // their command line, stopped, and their folders unmounted and removed.
  for (const dir of leftoverEngineDirs().filter((d) => !d.startsWith(swarmDir + '/'))) {
    await stopEngine({
      dc: 'leftover',
      dir,
      socket: join(dir, 'docker.sock'),
      dockerHost: `unix://${join(dir, 'docker.sock')}`,
    })
    removeEngineFiles(dir)
  }
  // Node disks still mounted by an interrupted run (any LOCAL_DIR), and their loop devices.
  for (const dir of leftoverNodeDiskDirs().filter((d) => !d.startsWith(swarmDir + '/')))
    removeEngineFiles(dir)
  for (const kind of ['github', 'discord']) killPidFile(join(swarmDir, `${kind}-stand-in.pid`))
  // Also those whose pid files went missing (an interrupted run): found by their command line.
  attempt('pkill', ['-f', `stand-ins/serve.ts (github|discord) ${bridge.address} `])
  killPidFile(join(swarmDir, 'edge.pid'))
  // An edge that a drill or an interrupted swarm:edge started: its process group (wrangler, workerd).
  const edges = spawnSync('pgrep', ['-f', `local/edge-dev\\.ts 127\\.0\\.0\\.1 ${edgePort} `], {
    encoding: 'utf8',
  })
  for (const pid of edges.stdout.split('\n').filter(Boolean))
    try {
      process.kill(-Number(pid), 'SIGTERM')
    } catch {
      // gone already
    }
  await Promise.all(swarmNodes(localDir).map((node) => removeNode(node)))
  const builder = builderOf(swarmDir)
  await stopEngine(builder)
  removeEngineFiles(builder.dir)
  killPidFile(join(swarmDir, 'registry', 'registry.pid'))
  attempt('pkill', ['-f', '^docker-registry serve .*/docker-swarm/registry/config.yml'])
  removeBridge()
  removeEngineFiles(swarmDir)
  rmSync(swarmDir, { recursive: true, force: true })
}

if (import.meta.main) {
  const localDir = resolve(process.env.LOCAL_DIR ?? join(projectRoot, '.local'))
  await swarmDown(localDir)
  console.log('swarm down: engines, namespaces, links and files removed')
}
