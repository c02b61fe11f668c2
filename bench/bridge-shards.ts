/**
 * Issue #16's bridge benchmark: throughput through NatsBridge objects with one and several shards
 * (BRIDGE_SHARDS, edge/nats/bridge-stub.ts).
 *
 * Each request is what an image miss does to a bridge: the Worker (bench/bridge-shards-worker.ts, the
 * edge's own NatsBridge and natsBridge, bundled by `wrangler deploy --dry-run` and served by workerd,
 * bench/worker-process.ts) asks the bridge that natsBridge names for a new key for a streamed reply
 * of `replyBytes` (32 KiB: an image), given by a Node responder (bench/bridge-responder.ts) through a
 * local nats-server.
 * Every key is new, so nothing collapses; closed loop at a fixed concurrency; the configurations are
 * run in interleaved rounds (bench/load.ts), so a slow minute of this shared machine hurts each alike.
 *
 * One workerd process runs one thread (the Worker and every object in it): sharding inside one process
 * cannot add throughput. Cloudflare spreads objects over machines, so a configuration here is (shards,
 * workerd processes), and the load generator sends shard k's requests to process k mod H, as Cloudflare
 * routes a request to the machine of its object. (2, 1) ≈ (1, 1) is what shows the bench is fair.
 *
 * In production an object saturates at its machine's thread (a soft limit of about 1,000 req/s per
 * object), and N shards on N machines have N threads. Here every process shares this machine's cores
 * with nats-server, the responder and the load generator, and one workerd alone can fill them. So each
 * workerd process (a host) is capped at `hostCores` by a cgroup (local/cpu-cap.ts), as the WAN lab
 * emulates distance: a host's share, not the machine, is what saturates, and (2, 2) and (3, 3) show what
 * each host adds while the hosts and the rest of the bench fit in the machine. The cap is a scale model
 * of a thread (its absolute req/s are the cap's, not Cloudflare's); without root or a cgroup v1 cpu
 * controller, or with `hostCores: null` (`npm run bench -- --only bridges --uncapped`), the hosts run
 * uncapped and the table shows the machine's ceiling instead.
 *
 * Besides req/s, p50/p99 and workerd's CPU per request, the table gives how many cores each host and
 * the whole configuration kept busy, the ceilings (the caps', the machine's: its cores over the bench's
 * CPU per request) and what processes outside the bench took meanwhile.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect } from '@nats-io/transport-node'
import { subjects } from '#shared/subjects.ts'
import { projectRoot } from '../local/platform-specs.ts'
import { startProcess, stopProcess, type Supervised } from '../local/processes.ts'
import { shardOf } from '../edge/nats/shard.ts'
import { startNatsServer } from '../test/support/nats-server.ts'
import { natsAuth, testNatsCredentials } from '../test/support/nats-credentials.ts'
import { testOriginProof } from '../test/support/origin-proof.ts'
import { cpuMs, machineBusyMs } from '../local/process-table.ts'
import { createCpuCap } from '../local/cpu-cap.ts'
import { idleCpu, interleaved, type Measured } from './load.ts'
import { benchConfig, startBenchWorkers, type BenchWorkers } from './worker-process.ts'
import { printTable } from './table.ts'

export interface BridgeBenchOptions {
  /** Configurations as (shards, workerd processes); the first is the baseline of the ratios. */
  configs: ReadonlyArray<readonly [shards: number, processes: number]>
  concurrency: number
  rounds: number
  roundMs: number
  /** The responder's reply: an image of this size. */
  replyBytes: number
  /** Each workerd process's CPU cap in cores (local/cpu-cap.ts), or null: uncapped. */
  hostCores: number | null
}

export const bridgeBenchDefaults: BridgeBenchOptions = {
  configs: [
    [1, 1],
    [2, 1],
    [2, 2],
    [3, 3],
  ],
  concurrency: 64,
  rounds: 5,
  roundMs: 5_000,
  replyBytes: 32 * 1024,
  // Capped, a request costs workerd about 0.5 ms and nats-server, the responder and the load generator
  // about 0.33 ms together: three hosts at their caps (1,800 req/s) keep 1.5 of two cores busy, and the
  // rest of a quiet machine (about 0.3 core) fits beside them. The table says when a row's hosts stayed
  // under their caps: the machine, busier than that, bounded it.
  hostCores: 0.3,
}

/** Where Cloudflare documents that one object saturates: its soft limit of requests per second. */
const OBJECT_LIMITS = 'https://developers.cloudflare.com/durable-objects/platform/limits/'

const DC = { id: 'fra', name: 'Frankfurt', region: 'eu', lat: 50.11, lon: 8.68 }
const WORKER = 'bridge-bench'

/** The Worker's wrangler config: its NatsBridge binding and migration, as wrangler.toml's. */
const workerConfig = (dir: string): string =>
  benchConfig(dir, WORKER, 'bridge-shards-worker.ts', [
    'compatibility_flags = ["nodejs_compat"]',
    '[[durable_objects.bindings]]',
    'name = "NATS_BRIDGE"',
    'class_name = "NatsBridge"',
    '[[migrations]]',
    'tag = "v1"',
    'new_sqlite_classes = ["NatsBridge"]',
  ])

/** Until the responder answers on NATS (it connects after it starts). */
async function waitForResponder(natsUrl: string, responder: Supervised): Promise<void> {
  const nc = await connect({ servers: natsUrl, ...natsAuth() })
  try {
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      try {
        await nc.request(subjects.imageTransform(DC.id), 'ready?', { timeout: 500 })
        return
      } catch {
        await sleep(100)
      }
    }
    throw new Error(`the bridge responder did not answer (log: ${responder.spec.logFile})`)
  } finally {
    await nc.close()
  }
}

interface Configuration {
  label: string
  shards: number
  hosts: BenchWorkers[]
}

/** How the run's hosts run: each capped at `cores`, or uncapped, and why. */
type HostCaps = { capped: true; cores: number } | { capped: false; why: string }

/** Whether this machine lets the bench cap its hosts: a trial group, removed at once. */
function hostCaps(cores: number | null): HostCaps {
  if (cores === null) return { capped: false, why: 'uncapped as asked (--uncapped)' }
  const trial = createCpuCap('bridges-trial', cores)
  if (!trial.ok) return { capped: false, why: `cannot cap the hosts, so uncapped: ${trial.reason}` }
  trial.cap.remove()
  return { capped: true, cores }
}

/** The run's cap, as the run prints it. */
function describeCaps(caps: HostCaps): string {
  if (!caps.capped) return `each host (workerd process) on the machine's cores: ${caps.why}`
  return (
    `each host (workerd process) capped at ${caps.cores} core by a cgroup (local/cpu-cap.ts): ` +
    `standing for one Cloudflare machine's thread, where an object saturates (${OBJECT_LIMITS})`
  )
}

export async function benchBridgeShards(options: BridgeBenchOptions = bridgeBenchDefaults): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vtta-bench-bridges-'))
  // Undone in reverse order, also when a step fails.
  const stops: Array<() => Promise<unknown>> = [
    () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  ]
  try {
    const nats = await startNatsServer('bench-bridges')
    stops.push(() => nats.dispose())
    const credentials = testNatsCredentials()
    const responder = startProcess({
      dc: DC.id,
      service: 'bridge-responder',
      url: nats.url,
      command: process.execPath,
      args: [join(projectRoot, 'bench', 'bridge-responder.ts')],
      cwd: projectRoot,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        NATS_URL: nats.url,
        NATS_USER: 'operator',
        NATS_SEED: credentials.seed('operator'),
        DC: DC.id,
        REPLY_BYTES: String(options.replyBytes),
      },
      logFile: join(dir, 'responder.log'),
    })
    stops.push(() => stopProcess(responder))
    await waitForResponder(nats.url, responder)

    const caps = hostCaps(options.hostCores)
    console.log(`\nbridges: ${describeCaps(caps)}`)
    const config = workerConfig(dir)
    const vars = (shards: number) => ({
      DATACENTERS: JSON.stringify([{ ...DC, endpoints: { web: 'http://127.0.0.1:9', natsWs: nats.wsUrl } }]),
      NATS_EDGE_SEED: credentials.seed('edge'),
      ...testOriginProof,
      BRIDGE_SHARDS: String(shards),
    })
    const configurations: Configuration[] = []
    for (const [shards, processes] of options.configs) {
      const label = `(${shards}, ${processes})`
      const hosts: BenchWorkers[] = []
      for (let h = 0; h < processes; h++) {
        const host = await startBenchWorkers(`bridges-s${shards}-h${h}`, [
          { name: WORKER, config, vars: vars(shards), readyPath: '/ready' },
        ])
        stops.push(() => host.stop())
        hosts.push(host)
        if (caps.capped) {
          const made = createCpuCap(`bridges-s${shards}-p${processes}-h${h}`, caps.cores)
          if (!made.ok) throw new Error(`${label}, host ${h}: ${made.reason}`)
          // Runs before the host's stop (stops run in reverse): its workerd goes back, the group away.
          stops.push(() => Promise.resolve().then(() => made.cap.remove()))
          made.cap.add(host.workerdPid())
        }
      }
      configurations.push({ label, shards, hosts })
    }

    const others = { natsServer: nats.proc.pid, responder: responder.pid, loadGenerator: process.pid }
    const workerds = configurations.flatMap((c) => c.hosts.map((h) => h.workerdPid()))
    const idle = await idleCpu([...workerds, ...Object.values(others)], 2_000)
    const targets = configurations.map((c) => {
      let n = 0
      return {
        name: c.label,
        // Every key new; its shard's requests to process shard mod H. The Worker refuses one whose
        // bridge is not that shard (421): the hash is the same in Node and in workerd.
        url: () => {
          const key = `${c.shards}-${c.hosts.length}-${n++}`
          const shard = shardOf(key, c.shards)
          return `${c.hosts[shard % c.hosts.length]!.url(WORKER)}/bridge?key=${key}&shard=${shard}`
        },
        pids: [...c.hosts.map((h) => h.workerdPid()), ...Object.values(others)],
      }
    })
    // What the rest of this shared machine took meanwhile: its busy time less the bench's processes'.
    const ours = () => [...idle.keys()].reduce((ms, pid) => ms + cpuMs(pid), 0)
    const [machine0, ours0, t0] = [machineBusyMs(), ours(), performance.now()]
    const results = await interleaved(targets, {
      concurrency: options.concurrency,
      rounds: options.rounds,
      roundMs: options.roundMs,
      warmupMs: 1_000,
      idle,
    })
    const outsideCores = (machineBusyMs() - machine0 - (ours() - ours0)) / (performance.now() - t0)
    printResults(options, caps, configurations, results, others, outsideCores)
  } finally {
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(error))
  }
}

function printResults(
  options: BridgeBenchOptions,
  caps: HostCaps,
  configurations: Configuration[],
  results: Map<string, Measured>,
  others: Record<'natsServer' | 'responder' | 'loadGenerator', number>,
  outsideCores: number
): void {
  const [first] = configurations
  const base = first && results.get(first.label)
  if (!first || !base) throw new Error('no baseline configuration')
  const workerdCpu = (c: Configuration, r: Measured) =>
    c.hosts.reduce((ms, h) => ms + (r.cpuPerRequestByPid.get(h.workerdPid()) ?? NaN), 0)
  /** Cores a process kept busy: its CPU ms per request times requests per second. */
  const cores = (r: Measured, pid: number) => ((r.cpuPerRequestByPid.get(pid) ?? NaN) * r.rps) / 1000
  /** The least busy host's share of its cap: near 1 when the caps, not the machine, bound the row. */
  const atCap = (c: Configuration, r: Measured) =>
    caps.capped ? Math.min(...c.hosts.map((h) => cores(r, h.workerdPid()))) / caps.cores : NaN
  const machineCores = availableParallelism()
  const rows = configurations.map((c) => {
    const r = results.get(c.label)!
    const allCpu = [...r.cpuPerRequestByPid.values()].reduce((n, ms) => n + ms, 0)
    return [
      c.label,
      r.rps,
      r.rps / base.rps,
      r.p50,
      r.p99,
      workerdCpu(c, r),
      workerdCpu(c, r) / workerdCpu(first, base),
      c.hosts.map((h) => cores(r, h.workerdPid()).toFixed(2)).join(' + '),
      caps.capped ? `${(atCap(c, r) * 100).toFixed(0)}%` : '-',
      (allCpu * r.rps) / 1000,
      // Every host at its cap, each request costing what it cost this row's hosts.
      caps.capped ? (c.hosts.length * caps.cores * 1000) / workerdCpu(c, r) : NaN,
      (machineCores * 1000) / allCpu,
      r.errors,
    ]
  })
  printTable(
    `NatsBridge throughput by (shards, workerd processes): concurrency ${options.concurrency}, ` +
      `${options.replyBytes / 1024} KiB replies, ${options.rounds} rounds of ${options.roundMs / 1000} s;\n` +
      describeCaps(caps),
    [
      'configuration',
      'req/s',
      'x (1,1)',
      'p50 ms',
      'p99 ms',
      'workerd CPU ms/req',
      'x (1,1)',
      'workerd cores busy',
      'least host at cap',
      'bench cores busy',
      'caps ceiling req/s',
      'machine ceiling req/s',
      'errors',
    ],
    rows
  )
  printTable(
    'where the CPU goes, ms per request (less each process idle use)',
    ['configuration', 'workerd', 'nats-server', 'responder', 'load generator'],
    configurations.map((c) => {
      const r = results.get(c.label)!
      const of = (pid: number) => r.cpuPerRequestByPid.get(pid) ?? NaN
      return [
        c.label,
        workerdCpu(c, r),
        of(others.natsServer),
        of(others.responder),
        of(others.loadGenerator),
      ]
    })
  )
  const common = [
    `  Machine ceiling: ${machineCores} cores / CPU per request of every process of the bench (workerd, nats-server,`,
    '  responder, load generator): no configuration can pass it on this machine, however many shards.',
    `  Meanwhile, processes outside the bench kept ${outsideCores.toFixed(2)} cores busy on average.`,
    '  workerd runs one thread per process, the Worker and all its objects on it: (2, 1) about equal to',
    '  (1, 1) shows the bench is fair (more objects on one thread add nothing), not that sharding is',
    '  useless. workerd CPU per request: utime + stime (/proc/<pid>/stat) of each workerd of the',
    '  configuration over its rounds, less its idle use, per request.',
  ]
  if (!caps.capped) {
    const ceiling = 1000 / workerdCpu(first, base)
    console.log(
      [
        `  One object's ceiling, a core of its own: 1 / workerd CPU per request of ${first.label} = ${ceiling.toFixed(0)} req/s.`,
        ...common,
        '  Across processes, as Cloudflare spreads objects over machines, shards add cores; uncapped, they',
        '  can only add what the machine ceiling leaves above (1, 1): nats-server, the responder and the load',
        '  generator share the same cores.',
      ].join('\n')
    )
    return
  }
  const belowCap = configurations.filter((c) => atCap(c, results.get(c.label)!) < 0.9).map((c) => c.label)
  console.log(
    [
      `  Each host is capped at ${caps.cores} core (a cgroup CFS quota): a scale model of the thread an object`,
      '  gets on its Cloudflare machine, where it saturates (a soft limit of about 1,000 req/s per object),',
      '  small enough that every host of the largest configuration and the rest of the bench fit in this',
      "  machine's cores. Its req/s are the cap's, not Cloudflare's; the growth from host to host is the",
      '  finding. Caps ceiling: hosts x cap / workerd CPU per request. Least host at cap: the least busy',
      '  host of the row, as a share of its cap.',
      ...common,
      '  Across hosts, each adds its own share, as each Cloudflare machine adds its thread.',
      belowCap.length
        ? `  ${belowCap.join(', ')}: a host stayed under 90% of its cap, so the machine (or the load), not the caps, bounded it.`
        : '  Every host of every row ran at 90% of its cap or more: the caps bounded every row, not the machine.',
    ].join('\n')
  )
}
