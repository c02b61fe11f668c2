/**
 * The benchmarks' Worker host: one Miniflare (one workerd process) serving bundled Workers, each on a
 * socket of its own (Miniflare's `unsafeDirectSockets`: straight to the Worker, past Miniflare's entry
 * Worker, which production does not have). Each Worker's bindings are what wrangler makes of its
 * config (unstable_getMiniflareWorkerOptions: vars, Durable Objects with SQLite, rate limiters, the
 * Cache API), with the given vars over the config's. Storage persists under `persist`, as under
 * `wrangler dev --persist-to`. The Workers' log lines go as they are to `workerLog`, written by this
 * process: production ships them off the machine, so they must not pass through the load generator.
 *
 *   node bench/miniflare-host.ts   with { workers: HostedWorker[], persist, workerLog } as JSON in
 *                                  BENCH_WORKERS
 * Started and stopped (SIGTERM) by bench/worker-process.ts.
 */
import { dirname } from 'node:path'
import { Miniflare, convertV4MiniflareOptions, type V4WorkerOptions } from 'miniflare'
import { unstable_getMiniflareWorkerOptions } from 'wrangler'
import { z } from 'zod'
import { BoundedLogFile } from '../local/log-file.ts'
import { LOG_FILE_MAX_BYTES } from '../local/processes.ts'

export const ratelimitsSchema = z.record(
  z.string(),
  z.object({
    namespace_id: z.string(),
    simple: z.object({ limit: z.number(), period: z.union([z.literal(10), z.literal(60)]).optional() }),
  })
)

const hostedWorkerSchema = z.object({
  name: z.string(),
  /** Its wrangler config: bindings and compatibility. */
  config: z.string(),
  /** The bundle `wrangler deploy --dry-run` wrote. */
  script: z.string(),
  vars: z.record(z.string(), z.string()),
  /** Its socket on 127.0.0.1. */
  port: z.number().int(),
  ratelimits: ratelimitsSchema.optional(),
})

export type HostedWorker = z.infer<typeof hostedWorkerSchema>

const hostSchema = z.object({
  workers: z.array(hostedWorkerSchema).min(1),
  persist: z.string(),
  workerLog: z.string(),
})

function hostedOptions(worker: HostedWorker): V4WorkerOptions {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(worker.config, '')
  // wrangler's type of these options loses their known keys (an Omit over an index signature):
  // the two merged here are read back through their schemas.
  const bindings = z.record(z.string(), z.json()).parse(workerOptions.bindings ?? {})
  const ratelimits = ratelimitsSchema.parse(workerOptions.ratelimits ?? {})
  return {
    ...workerOptions,
    // The bundle is one module: no rules to find others by (Miniflare 5 refuses them anyway).
    modulesRules: undefined,
    name: worker.name,
    modules: true,
    scriptPath: worker.script,
    // Module names are paths relative to this; the bundle is in a directory of its own.
    modulesRoot: dirname(worker.script),
    bindings: { ...bindings, ...worker.vars },
    ratelimits: { ...ratelimits, ...worker.ratelimits },
    unsafeDirectSockets: [{ host: '127.0.0.1', port: worker.port }],
  }
}

if (import.meta.main) {
  const { workers, persist, workerLog } = hostSchema.parse(JSON.parse(process.env.BENCH_WORKERS ?? '{}'))
  const log = new BoundedLogFile(workerLog, LOG_FILE_MAX_BYTES)
  // wrangler gives Miniflare 4's option shape; Miniflare 5 converts it, as wrangler itself does.
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      workers: workers.map(hostedOptions),
      resourcePersistencePath: persist,
      // Miniflare's own entry socket (unused: every Worker has its own) on a free loopback port.
      host: '127.0.0.1',
      port: 0,
      handleStructuredLogs: ({ message }) => log.write(`${message}\n`),
    })
  )
  await mf.ready
  console.log(`workers ready: ${workers.map((w) => `${w.name} on 127.0.0.1:${w.port}`).join(', ')}`)
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      void mf.dispose().finally(() => process.exit(0))
    })
}
