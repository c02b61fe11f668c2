/**
 * The local edge: wrangler's dev server (the engine of `wrangler dev`: its ProxyWorker, Miniflare and
 * workerd) started through wrangler's API, so that one thing can differ from the CLI: no DevTools
 * inspector. With the inspector on, wrangler subscribes to every console message of the Worker and
 * keeps each one in memory until a DevTools window attaches, and forwards each to its Node process
 * as a debug log: about 3 ms of CPU per request log line, and memory that grows for as long as the
 * platform runs. The Worker's own output still reaches stdout (the edge's log file).
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
  },
})
await worker.ready
console.log(`edge ready on http://${ip}:${port}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void worker.dispose().finally(() => process.exit(0))
  })
