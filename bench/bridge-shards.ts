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
 * routes a request to the machine of its object. (2, 1) ≈ (1, 1) is what shows the bench is fair; (2, 2)
 * and (4, 2) show the growth, bounded by what the machine has left: nats-server, the responder and the
 * load generator share its cores with the workerd processes. So the table gives, besides req/s, p50/p99
 * and workerd's CPU per request, how many cores each configuration kept busy, the machine's ceiling
 * (its cores over the bench's CPU per request) and what processes outside the bench took meanwhile.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
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
import { idleCpu, interleaved, type Measured } from './load.ts'
import { startBenchWorkers, type BenchWorkers } from './worker-process.ts'
import { printTable } from './table.ts'

export interface BridgeBenchOptions {
  /** Configurations as (shards, workerd processes); the first is the baseline of the ratios. */
  configs: ReadonlyArray<readonly [shards: number, processes: number]>
  concurrency: number
  rounds: number
  roundMs: number
  /** The responder's reply: an image of this size. */
  replyBytes: number
}

export const bridgeBenchDefaults: BridgeBenchOptions = {
  configs: [
    [1, 1],
    [2, 1],
    [2, 2],
    [4, 2],
  ],
  concurrency: 64,
  rounds: 5,
  roundMs: 5_000,
  replyBytes: 32 * 1024,
}

const DC = { id: 'fra', name: 'Frankfurt', region: 'eu', lat: 50.11, lon: 8.68 }
const WORKER = 'bridge-bench'

/** The Worker's wrangler config: its NatsBridge binding and migration, as wrangler.toml's. */
function workerConfig(dir: string): string {
  const config = join(dir, `${WORKER}.wrangler.toml`)
  writeFileSync(
    config,
    [
      `name = "${WORKER}"`,
      `main = "${join(projectRoot, 'bench', 'bridge-shards-worker.ts')}"`,
      'compatibility_date = "2026-11-01"',
      'compatibility_flags = ["nodejs_compat"]',
      '[[durable_objects.bindings]]',
      'name = "NATS_BRIDGE"',
      'class_name = "NatsBridge"',
      '[[migrations]]',
      'tag = "v1"',
      'new_sqlite_classes = ["NatsBridge"]',
      '',
    ].join('\n')
  )
  return config
}

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
    printResults(options, configurations, results, others, outsideCores)
  } finally {
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => console.error(error))
  }
}

function printResults(
  options: BridgeBenchOptions,
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
      (allCpu * r.rps) / 1000,
      (machineCores * 1000) / allCpu,
      r.errors,
    ]
  })
  printTable(
    `NatsBridge throughput by (shards, workerd processes): concurrency ${options.concurrency}, ` +
      `${options.replyBytes / 1024} KiB replies, ${options.rounds} rounds of ${options.roundMs / 1000} s`,
    [
      'configuration',
      'req/s',
      'x (1,1)',
      'p50 ms',
      'p99 ms',
      'workerd CPU ms/req',
      'x (1,1)',
      'workerd cores busy',
      'bench cores busy',
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
  const ceiling = 1000 / workerdCpu(first, base)
  console.log(
    [
      `  One object's ceiling, a core of its own: 1 / workerd CPU per request of ${first.label} = ${ceiling.toFixed(0)} req/s.`,
      `  Machine ceiling: ${machineCores} cores / CPU per request of every process of the bench (workerd, nats-server,`,
      '  responder, load generator): no configuration can pass it on this machine, however many shards.',
      `  Meanwhile, processes outside the bench kept ${outsideCores.toFixed(2)} cores busy on average.`,
      '  workerd runs one thread per process, the Worker and all its objects on it: (2, 1) about equal to',
      '  (1, 1) shows the bench is fair (more objects on one thread add nothing), not that sharding is',
      '  useless. Across processes, as Cloudflare spreads objects over machines, shards add cores; here they',
      '  can only add what the machine ceiling leaves above (1, 1): nats-server, the responder and the load',
      '  generator share the same cores. workerd CPU per request: utime + stime (/proc/<pid>/stat) of each',
      '  workerd of the configuration over its rounds, less its idle use, per request.',
    ].join('\n')
  )
}
