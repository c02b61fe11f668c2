/**
 * Node capacity: what Swarm reserves for the tasks one datacenter's node may hold at once, plus the second
 * task of every start-first service during an update (stack deploy updates every service at the same time),
 * fits the smallest node we run. Otherwise an update's new task stays Pending ("no suitable node
 * (insufficient resources)") and the rollout never completes: it happened to web-<dc> on the lab's 2-CPU
 * nodes once Prometheus and Alertmanager joined the stack.
 *
 * Which tasks a node may hold: none of a service whose placement constraints do not admit it (one pinned to
 * another datacenter's node, `node.labels.dc == <other>`, or kept in another region,
 * `node.labels.region == <other>`: nodes.ts reads them as Swarm does); otherwise a global service's one,
 * any other's replicas up to max_replicas_per_node.
 */
import { admits, type StackNode } from './nodes.ts'
import type { Service, Stack } from './stack-file.ts'

const GiB = 2 ** 30

/**
 * The smallest node the stack runs on: the lab's swarm nodes (`npm run swarm:up`) see this machine's 2 CPUs;
 * production's droplets (s-4vcpu-8gb, docs/operations.md) have 4 vCPUs and 8 GiB.
 */
export const smallestNode = { cpus: 2, memoryBytes: 8 * GiB }

/** Compose's memory quantity (go-units RAMInBytes: a number, optionally k, m, g or t, binary). */
export function memoryBytes(quantity: string | number): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(String(quantity))
  if (!match) throw new Error(`"${quantity}" is not a memory quantity such as 512M`)
  const power = ['', 'k', 'm', 'g', 't'].indexOf(match[2]!.toLowerCase())
  return Number(match[1]) * 1024 ** power
}

/** How many tasks of `service` `node` may hold. */
function tasksOnNode(service: Service, node: StackNode): number {
  const deploy = service.deploy ?? {}
  if (!admits(deploy.placement?.constraints ?? [], node)) return 0
  if (deploy.mode === 'global') return 1
  const replicas = deploy.replicas ?? 1
  return Math.min(replicas, deploy.placement?.max_replicas_per_node ?? replicas)
}

/** Problems, one per datacenter whose node would be short ("stack.yml: capacity: <detail>"). */
export function capacityProblems(stack: Stack, nodes: readonly StackNode[], file = 'stack.yml'): string[] {
  const problems: string[] = []
  for (const node of nodes) {
    const { dc } = node
    let cpus = 0
    let memory = 0
    const during: string[] = []
    for (const [name, service] of Object.entries(stack.services)) {
      const tasks = tasksOnNode(service, node)
      if (tasks === 0) continue
      const reserved = service.deploy?.resources?.reservations ?? {}
      const startFirst = service.deploy?.update_config?.order === 'start-first'
      // A start-first update runs `parallelism` new tasks beside the old ones.
      const extra = startFirst ? Math.min(tasks, service.deploy?.update_config?.parallelism ?? 1) : 0
      if (extra > 0) during.push(name)
      cpus += Number(reserved.cpus ?? 0) * (tasks + extra)
      memory += (reserved.memory === undefined ? 0 : memoryBytes(reserved.memory)) * (tasks + extra)
    }
    const updating =
      during.length > 0 ? ` (with the second task of ${during.join(', ')} during an update)` : ''
    if (cpus > smallestNode.cpus + 1e-9)
      problems.push(
        `${file}: capacity: ${dc}'s node would have ${cpus.toFixed(2)} CPUs reserved${updating}, more than the smallest node's ${smallestNode.cpus}: an update's new task would stay Pending`
      )
    if (memory > smallestNode.memoryBytes)
      problems.push(
        `${file}: capacity: ${dc}'s node would have ${(memory / GiB).toFixed(2)} GiB reserved${updating}, more than the smallest node's ${smallestNode.memoryBytes / GiB} GiB: an update's new task would stay Pending`
      )
  }
  return problems
}
