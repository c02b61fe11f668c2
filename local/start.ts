/**
 * `npm start`: the whole platform on this machine, until Ctrl-C.
 *   DATACENTERS_FILE  catalogue to use (default shared/datacenters.json)
 *   EDGE_PORT         edge port (default 8787)
 *   LOCAL_DIR         state, logs and data (default .local)
 *   WAN               1: every link between datacenters carries its RTT (local/wan/); default off
 */
import { readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { CatalogueError, parseCatalogue } from '#shared/catalogue.ts'
import { describeLocalEnv, localEnv } from './env.ts'
import { loadEdgeSecrets } from './edge-secrets.ts'
import { projectRoot, startPlatform, type Platform } from './platform.ts'
import { errorMessage } from '#shared/error-message.ts'
import { monitoringUrls } from './monitoring/specs.ts'
import { LOCAL_SCRAPE_INTERVAL_SECONDS } from './monitoring/prometheus-config.ts'
import { loadRttTable } from './wan/rtt.ts'

function fail(message: string): never {
  console.error(`npm start: ${message}`)
  process.exit(1)
}

const catalogueFile = resolve(process.env.DATACENTERS_FILE ?? join(projectRoot, 'shared', 'datacenters.json'))
const localDir = resolve(process.env.LOCAL_DIR ?? join(projectRoot, '.local'))
const edgePort = Number(process.env.EDGE_PORT ?? 8787)
if (!Number.isInteger(edgePort) || edgePort < 1 || edgePort > 65535)
  fail(`EDGE_PORT=${process.env.EDGE_PORT} is not a port`)

const wan = process.env.WAN === '1'
if (!['1', '0', '', undefined].includes(process.env.WAN)) fail(`WAN=${process.env.WAN}: use WAN=1 (or 0)`)

let catalogue
try {
  catalogue = parseCatalogue(
    JSON.parse(readFileSync(catalogueFile, 'utf8')),
    relative(process.cwd(), catalogueFile)
  )
} catch (error) {
  if (error instanceof CatalogueError) fail(`invalid datacenter catalogue: ${error.message}`)
  fail(`cannot read the datacenter catalogue ${catalogueFile}: ${errorMessage(error)}`)
}

// Every pair of the catalogue needs its round-trip time: say which one is missing before anything starts.
if (wan)
  try {
    loadRttTable().assertCovers(catalogue.map((dc) => dc.id))
  } catch (error) {
    fail(errorMessage(error))
  }

const edgeUrl = `http://127.0.0.1:${edgePort}`
let edgeSecrets
try {
  edgeSecrets = loadEdgeSecrets(localDir)
} catch (error) {
  fail(errorMessage(error))
}
if (edgeSecrets.created)
  console.log(
    `generated the edge's tokens: ${relative(process.cwd(), edgeSecrets.path)} (kept across restarts)`
  )
const env = localEnv(process.env, edgeUrl, edgeSecrets.secrets)
const started = Date.now()
console.log(
  `vtta.io local platform: ${catalogue.length} datacenters (${catalogue.map((dc) => dc.id).join(', ')})${wan ? ', WAN on (local/wan/rtt.json)' : ''}`
)

let platform: Platform | undefined
let stopping = false
const shutdown = async (signal: string) => {
  if (stopping) return
  stopping = true
  console.log(`\n${signal}: stopping every process …`)
  await platform?.stop()
  console.log('stopped.')
  process.exit(0)
}
process.on('SIGINT', () => void shutdown('SIGINT'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))

try {
  platform = await startPlatform({
    catalogue,
    localDir,
    edgePort,
    env: env.values,
    wan,
    onExit: (proc, how) =>
      console.error(
        `! ${proc.spec.dc ? `${proc.spec.dc} ` : ''}${proc.spec.service} (pid ${proc.pid}) ${how}; not restarted. Log: ${relative(process.cwd(), proc.spec.logFile)}`
      ),
  })
} catch (error) {
  fail(errorMessage(error))
}

const rows = platform.processes.map((p) => [p.spec.dc ?? '-', p.spec.service, String(p.pid), p.spec.url])
const widths = [0, 1, 2].map((c) =>
  Math.max(...[['dc', 'service', 'pid'][c]!, ...rows.map((r) => r[c]!)].map((s) => s.length))
)
const line = (r: string[]) => r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell)).join('  ')
console.log(['', line(['dc', 'service', 'pid', 'url']), ...rows.map(line), ''].join('\n'))
console.log('configuration:')
console.log(describeLocalEnv(env).join('\n'))
console.log(
  `\nmonitoring: Prometheus ${monitoringUrls.prometheus} (scrapes and evaluates the rules every ${LOCAL_SCRAPE_INTERVAL_SECONDS} s), Alertmanager ${monitoringUrls.alertmanager} (to the Discord stand-in)`
)
console.log(
  `state: ${relative(process.cwd(), join(localDir, 'state.json'))}   logs: ${relative(process.cwd(), join(localDir, 'logs'))}/`
)
console.log(
  `ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${platform.edgeUrl}  (try: curl -H 'x-client-geo: 51.5,-0.1' ${platform.edgeUrl}/)`
)
console.log('Ctrl-C stops everything.')
