/**
 * `npm run swarm:edge`: the edge (wrangler dev) in front of the swarm `npm run swarm:up` made, on
 * http://127.0.0.1:8788, until Ctrl-C. Its datacenters are the swarm's nodes; its tokens are in
 * <LOCAL_DIR>/docker-swarm/secrets/edge.json.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { loadEdgeSecrets } from '../edge-secrets.ts'
import { projectRoot } from '../platform-specs.ts'
import { startProcess, stopProcess } from '../processes.ts'
import { waitForHttp } from '../wait.ts'
import { edgeUrl, swarmEdgeSpec } from './outside.ts'
import { swarmDir as swarmDirOf, swarmNodes } from './topology.ts'

const localDir = resolve(process.env.LOCAL_DIR ?? join(projectRoot, '.local'))
const swarmDir = swarmDirOf(localDir)
const spec = swarmEdgeSpec(
  swarmDir,
  swarmNodes(localDir),
  loadEdgeSecrets(swarmDir, { create: false }).secrets,
  process.env
)
const edge = startProcess(spec)
// swarm:down stops it (its process group: wrangler and workerd) if this command is gone.
const pidFile = join(swarmDir, 'edge.pid')
writeFileSync(pidFile, String(edge.pid))
await waitForHttp(`${edgeUrl}/status.json`, { timeoutMs: 60_000, what: 'the edge', abort: edge.exited })
console.log(`edge on ${edgeUrl} in front of the swarm (log: ${spec.logFile}); Ctrl-C stops it`)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.once(
    signal,
    () => void stopProcess(edge).then(() => (rmSync(pidFile, { force: true }), process.exit(0)))
  )
