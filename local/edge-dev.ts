/**
 * The local edge: wrangler's dev server (the engine of `wrangler dev`: its ProxyWorker, Miniflare and
 * workerd) started through wrangler's API, so that two things can differ from the CLI:
 * - No DevTools inspector. With it, wrangler subscribes to every console message of the Worker,
 *   keeps each one in memory until a DevTools window attaches, and forwards each to its Node process
 *   as a debug log: about 3 ms of CPU per request log line, and memory that grows for as long as the
 *   platform runs.
 * - The Worker's log lines are written as they come, and wrangler's own output is cut to warnings
 *   and errors (WRANGLER_LOG=warn, set by platform-specs.ts). At info level wrangler logs every
 *   request a second time, through an HTTP call from its ProxyWorker to this process: about 1 ms of
 *   CPU per request. The Worker's own request log (edge/request-log.ts) is the record.
 *
 *   node local/edge-dev.ts <ip> <port> <persist dir>   with the vars as JSON in EDGE_VARS
 */
import { join } from 'node:path'
import { unstable_startWorker } from 'wrangler'
import { projectRoot } from './platform-specs.ts'

const [ip, port, persist] = process.argv.slice(2)
if (!ip || !port || !persist) {
  console.error('usage: node local/edge-dev.ts <ip> <port> <persist dir>   (vars as JSON in EDGE_VARS)')
  process.exit(64)
}
const vars = JSON.parse(process.env.EDGE_VARS ?? '{}') as Record<string, string>

const worker = await unstable_startWorker({
  config: join(projectRoot, 'wrangler.toml'),
  bindings: Object.fromEntries(
    Object.entries(vars).map(([name, value]) => [name, { type: 'plain_text', value }])
  ),
  dev: {
    server: { hostname: ip, port: Number(port) },
    inspector: false,
    persist,
    // Worker output, unchanged (its lines are JSON already); warnings and errors to stderr.
    structuredLogsHandler: ({ level, message }: { level: string; message: string }) =>
      (level === 'warn' || level === 'error' ? process.stderr : process.stdout).write(`${message}\n`),
  },
})
await worker.ready
console.log(`edge ready on http://${ip}:${port}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void worker.dispose().finally(() => process.exit(0))
  })
