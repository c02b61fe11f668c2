/**
 * The nodes: a bridge, one network namespace and one Docker Engine per datacenter, and the swarm they
 * form the runbook's way (docs/operations.md, "Bootstrap the swarm": the home region's nodes managers, the
 * others workers, every node labelled dc/region/role/nats). Engines run with `--iptables=false --bridge=none`
 * (this kernel has no netfilter for Docker's rules) and their own data-root, exec-root and socket under
 * .local/docker-swarm/nodes/<dc>/. Each node's data-root is a filesystem of its own (nodeDisk below), as
 * production keeps /var/lib/docker apart from the root disk: a full Docker disk on one node is then a full
 * disk of that node only.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { attempt, docker, dockerSucceeds, run } from './command.ts'
import { bridge, managerOf, registryHost, type SwarmNode } from './topology.ts'

export function makeNetwork(nodes: SwarmNode[]): void {
  if (!attempt('ip', ['link', 'show', bridge.name])) {
    run('ip', ['link', 'add', bridge.name, 'type', 'bridge'])
    run('ip', ['addr', 'add', `${bridge.address}/${bridge.prefix}`, 'dev', bridge.name])
    run('ip', ['link', 'set', bridge.name, 'up'])
  }
  for (const node of nodes) {
    if (attempt('ip', ['netns', 'pids', node.netns])) continue
    run('ip', ['netns', 'add', node.netns])
    run('ip', ['link', 'add', node.hostLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.netns])
    run('ip', ['link', 'set', node.hostLink, 'master', bridge.name, 'up'])
    const inNs = (...args: string[]) => run('ip', ['-n', node.netns, ...args])
    inNs('addr', 'add', `${node.address}/${bridge.prefix}`, 'dev', 'eth0')
    inNs('link', 'set', 'eth0', 'up')
    inNs('link', 'set', 'lo', 'up')
    inNs('route', 'add', 'default', 'via', bridge.address)
  }
}

export type Engine = Pick<SwarmNode, 'dc' | 'dir' | 'socket' | 'dockerHost'>

/**
 * The size of each node's Docker data-root filesystem (SWARM_NODE_DISK, `truncate -s` syntax). The
 * default 3G holds what a run puts there with two thirds to spare: measured at the end of
 * `npm run test:swarm`'s roll drills, about 1 GB per node (the images, the backend's -next and -broken
 * versions included, JetStream's store, Prometheus's and Alertmanager's volumes, the containers' capped
 * logs). Room for a run's growth, small enough that the full-disk drill fills it in seconds. The file is
 * sparse: the host spends only what is written.
 */
export const nodeDiskSize = () => process.env.SWARM_NODE_DISK ?? '3G'

/** A node's disk: a sparse file holding an ext4 filesystem, loop-mounted as the engine's data-root. */
export const nodeDisk = (node: Pick<SwarmNode, 'dir'>) => ({
  file: join(node.dir, 'data.ext4'),
  mountpoint: join(node.dir, 'data'),
})

const mountpoints = () =>
  readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replaceAll('\\040', ' '))

/**
 * Makes a node's data-root its own filesystem before its engine starts (idempotent: an existing
 * filesystem is mounted again, a mounted one left alone). `-m 0`: no blocks reserved for root, because
 * Docker and JetStream write as root and would fill the reserve too; used + available = size, so the
 * DiskSpaceLow percentage is what `df` shows.
 */
export function makeNodeDisk(node: Pick<SwarmNode, 'dir'>, size = nodeDiskSize()): void {
  const disk = nodeDisk(node)
  // The node's / as its node exporter sees it (stack.local.yml): empty but for where the data-root goes,
  // made here because the exporter's read-only /host cannot get a mountpoint made inside it.
  mkdirSync(join(node.dir, 'host', 'var', 'lib', 'docker'), { recursive: true })
  if (mountpoints().includes(disk.mountpoint)) return
  mkdirSync(disk.mountpoint, { recursive: true })
  if (!existsSync(disk.file)) {
    run('truncate', ['-s', size, disk.file])
    run('mkfs.ext4', ['-q', '-F', '-m', '0', '-L', 'docker-data', disk.file])
  }
  run('mount', ['-o', 'loop', disk.file, disk.mountpoint])
}

/**
 * Unmounts a node's disk (after everything Docker mounted below it) and detaches its loop device; also
 * the loop devices whose file is gone already (an interrupted run that removed its folder).
 */
export function removeNodeDisk(node: Pick<SwarmNode, 'dir'>): void {
  const disk = nodeDisk(node)
  if (mountpoints().includes(disk.mountpoint)) attempt('umount', [disk.mountpoint])
  if (mountpoints().includes(disk.mountpoint)) attempt('umount', ['-l', disk.mountpoint])
  for (const device of loopDevicesOf(disk.file)) attempt('losetup', ['-d', device])
}

/** Loop devices backed by this file, or (no file given) by any swarm node's disk, deleted ones included. */
export function loopDevicesOf(file?: string): string[] {
  const listed = spawnSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], {
    encoding: 'utf8',
  })
  return listed.stdout
    .split('\n')
    .map((l) => /^(\S+)\s+(.*?)(?: \(deleted\))?\s*$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .filter(([, , back]) =>
      file === undefined ? /\/docker-swarm\/nodes\/[^/]+\/data\.ext4$/.test(back!) : back === file
    )
    .map(([, device]) => device!)
}

/**
 * An engine of ours: no iptables or default bridge (this kernel has no netfilter for Docker's rules), its
 * own data-root, exec-root, pidfile and socket under its folder, and the local registry over plain HTTP.
 */
export const dockerdArgs = (engine: Engine): string[] => [
  '--iptables=false',
  '--bridge=none',
  `--data-root=${join(engine.dir, 'data')}`,
  `--exec-root=${join(engine.dir, 'exec')}`,
  `--pidfile=${join(engine.dir, 'docker.pid')}`,
  `--host=${engine.dockerHost}`,
  `--insecure-registry=${registryHost}`,
]

/**
 * Starts a node's engine. `ip netns exec` remounts /sys and dockerd then finds no devices cgroup, so
 * nsenter enters only the network namespace; unshare gives the engine its own hostname (Swarm's
 * .Node.Hostname, from which stack.yml derives DC and NATS_URL).
 */
export function startEngine(node: SwarmNode): void {
  if (engineUp(node)) return
  mkdirSync(node.dir, { recursive: true })
  makeNodeDisk(node)
  const log = openSync(join(node.dir, 'dockerd.log'), 'a')
  const dockerd = ['dockerd', ...dockerdArgs(node)].join(' ')
  const child = spawn(
    'nsenter',
    [
      `--net=/var/run/netns/${node.netns}`,
      'unshare',
      '--uts',
      'sh',
      '-c',
      `hostname ${node.dc} && exec ${dockerd}`,
    ],
    { detached: true, stdio: ['ignore', log, log] }
  )
  child.unref()
}

export const engineUp = (node: Engine) => existsSync(node.socket) && dockerSucceeds(node.dockerHost, ['info'])

export async function waitForEngines(nodes: Engine[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (const node of nodes) {
    while (!engineUp(node)) {
      if (Date.now() > deadline)
        throw new Error(`the engine of ${node.dc} did not start: see ${join(node.dir, 'dockerd.log')}`)
      await sleep(250)
    }
  }
}

/** The engine's pid (null once it is gone): its pidfile, or its command line if the file went missing. */
export function enginePid(node: Engine): number | null {
  const pidFile = join(node.dir, 'docker.pid')
  let pid = Number.NaN
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim())
  } catch {
    const found = spawnSync('pgrep', ['-o', '-f', `^dockerd .*--pidfile=${pidFile}`], { encoding: 'utf8' })
    pid = Number.parseInt(found.stdout, 10)
  }
  if (!Number.isInteger(pid) || pid <= 0) return null
  try {
    process.kill(pid, 0)
    // A zombie (its parent never waited) is gone for our purposes.
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ? null : pid
  } catch {
    return null
  }
}

/** Stops a node's engine (its containers stop with it) and waits until it is gone. */
export async function stopEngine(node: Engine, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000) {
  const pid = enginePid(node)
  if (pid === null) return
  process.kill(pid, signal)
  const deadline = Date.now() + timeoutMs
  while (enginePid(node) !== null && Date.now() < deadline) await sleep(200)
  if (enginePid(node) !== null) process.kill(pid, 'SIGKILL')
}

/**
 * Containers reach the outside (here: the stand-ins on the bridge) through their node's
 * docker_gwbridge, which Docker masquerades with iptables, absent here. So each node gets its own
 * gateway subnet, made before it joins (Docker's documented way to customise docker_gwbridge), and this
 * machine routes each subnet back to its node: replies find their way without NAT.
 */
export function makeGatewayBridge(node: SwarmNode): void {
  const exists = dockerSucceeds(node.dockerHost, ['network', 'inspect', 'docker_gwbridge'])
  if (!exists)
    docker(node.dockerHost, [
      'network',
      'create',
      `--subnet=${node.gatewaySubnet}`,
      '--opt=com.docker.network.bridge.name=docker_gwbridge',
      '--opt=com.docker.network.bridge.enable_icc=false',
      '--opt=com.docker.network.bridge.enable_ip_masquerade=false',
      'docker_gwbridge',
    ])
  run('nsenter', [`--net=/var/run/netns/${node.netns}`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
  run('ip', ['route', 'replace', node.gatewaySubnet, 'via', node.address])
}

/**
 * The runbook's bootstrap on this machine's nodes: init on the first manager, the other managers (the home
 * region's nodes, topology.ts) join with the manager token, every other node with the worker token; then
 * the first manager labels them all (the runbook's block reads each node's region from the checkout's
 * catalogue). A node already in the swarm is left as it is (swarm:up run again).
 */
export function formSwarm(
  nodes: SwarmNode[],
  runbook: (node: SwarmNode, block: string, env: Record<string, string>) => void
) {
  const first = managerOf(nodes)
  const state = (n: SwarmNode) =>
    docker(n.dockerHost, ['info', '--format', '{{.Swarm.LocalNodeState}}']).trim()
  if (state(first) !== 'active') runbook(first, 'swarm-init', { NODE_IP: first.address })
  const token = (role: 'manager' | 'worker') =>
    docker(first.dockerHost, ['swarm', 'join-token', '-q', role]).trim()
  const managerToken = token('manager')
  const workerToken = token('worker')
  for (const node of nodes) {
    if (node === first || state(node) === 'active') continue
    const join = { NODE_IP: node.address, MANAGER_IP: first.address }
    if (node.manager) runbook(node, 'swarm-join', { ...join, MANAGER_TOKEN: managerToken })
    else runbook(node, 'swarm-join-worker', { ...join, WORKER_TOKEN: workerToken })
  }
  for (const node of nodes) runbook(first, 'label-node', { DC: node.dc })
}

/**
 * A node that dies (a droplet that crashes): its engine and every process below it killed at once, its
 * files kept. startEngine brings it back, and Swarm restarts its tasks.
 */
export function crashNode(node: SwarmNode): void {
  const inNamespace = run('ip', ['netns', 'pids', node.netns])
  killTrees(inNamespace.split('\n').filter(Boolean).map(Number))
}

/** Everything a node left behind: its processes, mounts, files, namespace and link. */
export async function removeNode(node: SwarmNode): Promise<void> {
  await stopEngine(node)
  // Whatever still runs in the namespace (containerd, its shims) and everything below them: each
  // container has a network namespace of its own, so it is found as a shim's descendant, not by netns.
  if (existsSync(`/var/run/netns/${node.netns}`)) {
    const inNamespace = attempt('ip', ['netns', 'pids', node.netns])
      ? run('ip', ['netns', 'pids', node.netns])
      : ''
    killTrees(inNamespace.split('\n').filter(Boolean).map(Number))
  }
  removeEngineFiles(node.dir)
  attempt('ip', ['netns', 'del', node.netns])
  attempt('ip', ['link', 'del', node.hostLink])
  attempt('ip', ['route', 'del', node.gatewaySubnet])
}

export function removeBridge(): void {
  attempt('ip', ['link', 'del', bridge.name])
}

/**
 * An engine's folder, after unmounting what Docker mounted under it (overlays, netns), deepest first,
 * and the node's own disk (its data-root) last: a loop device is detached only once nothing under it is
 * mounted, and a lazy unmount would leave the files to rmSync on the loop filesystem still attached.
 */
export function removeEngineFiles(dir: string): void {
  const disk = nodeDisk({ dir })
  const mounts = mountpoints()
    .filter((m) => m.startsWith(dir + '/') && m !== disk.mountpoint)
    .sort((a, b) => b.length - a.length)
  for (const m of mounts) attempt('umount', ['-l', m])
  removeNodeDisk({ dir })
  rmSync(dir, { recursive: true, force: true })
}

/** SIGKILLs these processes and all their descendants (children first found, then killed together). */
function killTrees(roots: number[]): void {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
    } catch {
      // gone meanwhile
    }
  }
  const all = new Set<number>()
  const queue = [...roots]
  while (queue.length > 0) {
    const pid = queue.pop()!
    if (all.has(pid)) continue
    all.add(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  for (const pid of all)
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone already
    }
}

/**
 * Node disks an interrupted run left mounted (in any LOCAL_DIR; their engines are gone): their node
 * folders, so that removeEngineFiles unmounts and detaches them. Loop devices of swarm disks that are
 * mounted nowhere (their file deleted, say) are detached here.
 */
export function leftoverNodeDiskDirs(): string[] {
  const dirs = mountpoints()
    .filter((m) => /\/docker-swarm\/nodes\/[^/]+\/data$/.test(m))
    .map((m) => dirname(m))
  const mounted = new Set(
    readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
  )
  for (const device of loopDevicesOf()) if (!mounted.has(device)) attempt('losetup', ['-d', device])
  return dirs
}

/** The folders of every swarm engine still running on this machine (`--pidfile=<dir>/docker.pid`). */
export function leftoverEngineDirs(): string[] {
  const found = spawnSync(
    'pgrep',
    ['-a', '-f', '^dockerd .*--pidfile=.*/docker-swarm/(nodes/[^/ ]+|builder)/docker.pid'],
    {
      encoding: 'utf8',
    }
  )
  return [...found.stdout.matchAll(/--pidfile=(\S+)\/docker\.pid/g)].map((m) => m[1]!)
}
