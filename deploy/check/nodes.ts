/**
 * The swarm's nodes as the deploy checks see them, and which of them a service's placement constraints
 * admit. Production runs one app node per datacenter of the stack (its nats-<dc> services), its hostname the
 * datacenter id, labelled by docs/operations.md's label-node block: `dc`, `region` (the production
 * catalogue's for that datacenter), `role=app` and `nats=true` (nodeLabels; test/local/runbook.test.ts runs
 * the block and holds it to this).
 *
 * Constraints are read as Swarm's scheduler reads them (swarmkit, manager/constraint): a node must satisfy
 * every one; `==` and `!=` compare values case-insensitively, and a label the node lacks reads as empty.
 * node.hostname and node.labels.* are modelled; what the checks cannot know (a label whose value is not known
 * here, node.id, node.role, node.platform.*, engine.labels.*, a constraint that does not parse) admits every
 * node, so that capacity never counts fewer tasks on a node than may land there.
 */
import { z } from 'zod'
import { natsDatacenters } from './service.ts'
import type { Service, Stack } from './stack-file.ts'

export interface StackNode {
  /** The datacenter id: the node's hostname and its `dc` label. */
  dc: string
  /** Its labels; a value left undefined is not known here (the catalogue lacks the datacenter or its region). */
  labels: Record<string, string | undefined>
}

/** The labels the runbook gives the node of a datacenter of `region`. */
export const nodeLabels = (dc: string, region: string | undefined): Record<string, string | undefined> => ({
  dc,
  region,
  role: 'app',
  nats: 'true',
})

/** What the nodes need of a catalogue entry, read also from a catalogue that does not validate. */
const entrySchema = z.looseObject({ id: z.string(), region: z.string().optional() })

/** One node per datacenter of the stack, with the region the production catalogue gives it. */
export function stackNodes(stack: Stack, productionCatalogue: unknown): StackNode[] {
  const entries: unknown[] = Array.isArray(productionCatalogue) ? productionCatalogue : []
  const regions = new Map(
    entries.flatMap((entry) => {
      const parsed = entrySchema.safeParse(entry)
      return parsed.success ? [[parsed.data.id, parsed.data.region] as const] : []
    })
  )
  return natsDatacenters(stack).map((dc) => ({ dc, labels: nodeLabels(dc, regions.get(dc)) }))
}

const nodeLabelPrefix = 'node.labels.'

/** Whether `node` satisfies one constraint ("node.labels.region == eu"). */
function satisfies(constraint: string, node: StackNode): boolean {
  const parsed = /^\s*([^=!\s]+)\s*(==|!=)\s*(.*?)\s*$/.exec(constraint)
  if (!parsed) return true
  const [, key = '', operator, expected = ''] = parsed
  let value: string | undefined
  if (key.toLowerCase() === 'node.hostname') value = node.dc
  else if (key.toLowerCase().startsWith(nodeLabelPrefix)) {
    // The label's own name is case-sensitive, as in Swarm; a label the node lacks is empty.
    const label = key.slice(nodeLabelPrefix.length)
    value = Object.hasOwn(node.labels, label) ? node.labels[label] : ''
  }
  if (value === undefined) return true
  const equal = value.toLowerCase() === expected.toLowerCase()
  return operator === '==' ? equal : !equal
}

/** Whether a task with these constraints may be placed on `node`. */
export const admits = (constraints: readonly string[], node: StackNode): boolean =>
  constraints.every((constraint) => satisfies(constraint, node))

/** The nodes a service's constraints admit. */
export const nodesOf = (service: Service, nodes: readonly StackNode[]): StackNode[] =>
  nodes.filter((node) => admits(service.deploy?.placement?.constraints ?? [], node))
