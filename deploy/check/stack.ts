/**
 * stack.yml as a whole: every backend service present, each datacenter with its web service and its tunnel,
 * nothing published, an encrypted overlay, secrets external and versioned, every node's reservations within
 * the smallest node, each node labelled as the runbook labels it (nodes.ts: its region from the production
 * catalogue) ("stack.yml: <invariant>: <detail>").
 * Then the invariants of EVERY service (service.ts), so a service added later that forgets one is reported.
 */
import { serviceNames } from '#shared/services.ts'
import { capacityProblems } from './capacity.ts'
import { stackNodes } from './nodes.ts'
import { natsDatacenters, serviceProblems } from './service.ts'
import { deployFiles } from './files.ts'
import type { Stack } from './stack-file.ts'

/**
 * Every problem of the stack: stack-wide ones and those of every service, each starting with stack.yml.
 * `productionCatalogue` (parsed JSON, undefined when missing) gives each node its region label.
 */
export function stackProblems(stack: Stack, conf: string, productionCatalogue?: unknown): string[] {
  const problems: string[] = []
  const fail = (invariant: string, detail: string) =>
    problems.push(`${deployFiles.stack}: ${invariant}: ${detail}`)
  const services = stack.services

  for (const service of serviceNames) {
    if (service === 'web') continue // one per datacenter, below
    if (!Object.hasOwn(services, service)) fail('services', `backend service ${service} is missing`)
  }
  if (natsDatacenters(stack).length === 0) fail('services', 'no nats-<dc> service')
  // Each datacenter: its web service and its tunnel, the only way in from the internet.
  for (const dc of natsDatacenters(stack)) {
    for (const service of [`web-${dc}`, `cloudflared-${dc}`])
      if (!Object.hasOwn(services, service)) fail('services', `${service} is missing`)
  }
  // Nothing is published: a published port is reachable from the internet around Access (Docker's own
  // iptables rules bypass the host firewall).
  for (const [name, svc] of Object.entries(services)) {
    if ((svc.ports ?? []).length > 0)
      fail('ports', `${name} publishes a port: nothing is published, the tunnel is the only way in`)
  }

  const networks = stack.networks
  if (Object.keys(networks).length === 0) fail('networks', 'no overlay network declared')
  for (const [network, spec] of Object.entries(networks)) {
    if (spec?.driver !== 'overlay') fail('networks', `${network} must be an overlay`)
    if (String(spec?.driver_opts?.encrypted) !== 'true') fail('networks', `${network} must be encrypted`)
  }
  // Secrets are created by the operator (`docker secret create <key>_v1 -`), never read from a file of the
  // repository, and carry a version so that a rotation is a new name.
  for (const [secret, spec] of Object.entries(stack.secrets)) {
    if (spec.external !== true) fail('secrets', `${secret} must be external (created by the operator)`)
    else if (!new RegExp(`^${secret}_v\\d+$`).test(spec.name ?? ''))
      fail('secrets', `${secret} needs a versioned name (${secret}_v1), rotated by a new one`)
  }

  for (const [name, svc] of Object.entries(services))
    problems.push(...serviceProblems(name, svc, stack, conf))
  // Every node can take its tasks and an update's second task (capacity.ts).
  problems.push(...capacityProblems(stack, stackNodes(stack, productionCatalogue), deployFiles.stack))
  return problems
}
