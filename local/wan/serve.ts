/**
 * The WAN relay as a process of `npm start` (WAN=1; spec in local/wan/spec.ts). Logs JSON lines
 * (pino) to stdout, which the supervisor bounds into `<LOCAL_DIR>/logs/wan.log`.
 *
 * Environment:
 *   WAN_DATACENTERS   the catalogue the platform runs, as JSON (ids in order; `region` when it has one)
 *   WAN_EDGE_LOCATIONS  edge locations without a datacenter, as JSON (ids in the edge's order; default
 *                     none): each has a leg to every datacenter, carrying its RTT (relay.ts)
 *   WAN_PORTS         comma-separated target ports to relay (local/wan/address.ts defaultWanPorts)
 *   WAN_CONTROL_PORT  its control API on 127.0.0.1 (GET /healthz once every listener is bound;
 *                     GET /state: datacenters, edge locations, cuts, open connections per link)
 *   LOCAL_DIR         where `wan/cuts.json` lives (default .local)
 *   WAN_RTT_FILE      the RTT table (default local/wan/rtt.json); WAN_HOLD_LIMIT_BYTES (relay.ts)
 *
 * At start it writes an empty cuts.json (a new platform starts whole), then follows the file:
 * fs.watch on its folder (the commands replace the file by a rename) and, as a fallback for missed
 * events, a re-read every second. A file that does not parse or names an unknown datacenter is logged
 * with the reason and ignored: the relay keeps the last good cuts.
 */
import { readFileSync, watch, mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { pino } from 'pino'
import { z } from 'zod'
import { datacenterIdSchema } from '#shared/catalogue.ts'
import { errorMessage } from '#shared/error-message.ts'
import { sendJson, serveHttp } from '../stand-ins/http.ts'
import { projectRoot } from '../platform-specs.ts'
import { ports } from '../addresses.ts'
import { CutSet, cutsPath, describeCuts, readCutsFile, writeCutsFile, type WanDatacenter } from './cuts.ts'
import { loadRttTable, defaultRttFile } from './rtt.ts'
import { WanRelay } from './relay.ts'

const log = pino({
  base: { service: 'wan', pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
})

/** A variable's JSON text as its value, or an issue saying it is not JSON. */
function parseJson(text: string, ctx: z.RefinementCtx): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `not JSON: ${errorMessage(error)}` })
    return z.NEVER
  }
}

const envSchema = z.object({
  // Extra catalogue fields (name, lat, weight, ...) are the platform's business, not the relay's.
  WAN_DATACENTERS: z
    .string()
    .transform(parseJson)
    .pipe(z.array(z.looseObject({ id: datacenterIdSchema, region: z.string().optional() })).min(1)),
  // Their names and coordinates are the edge's business (EDGE_LOCATIONS), not the relay's.
  WAN_EDGE_LOCATIONS: z
    .string()
    .default('[]')
    .transform(parseJson)
    .pipe(z.array(z.looseObject({ id: datacenterIdSchema }))),
  WAN_PORTS: z
    .string()
    .transform((text) => text.split(',').map(Number))
    .pipe(z.array(z.number().int().min(1).max(65535)).min(1)),
  WAN_CONTROL_PORT: z.coerce.number().int().min(1).max(65535),
  LOCAL_DIR: z.string().default(join(projectRoot, '.local')),
  WAN_RTT_FILE: z.string().default(defaultRttFile),
  WAN_HOLD_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .optional(),
})

const parsed = envSchema.safeParse(process.env)
if (!parsed.success) {
  log.fatal({ event: 'wan_config_invalid', issues: z.prettifyError(parsed.error) }, 'invalid configuration')
  process.exit(78)
}
const env = parsed.data
const datacenters: WanDatacenter[] = env.WAN_DATACENTERS.map((d) => ({ id: d.id, region: d.region }))
const edgeLocations = env.WAN_EDGE_LOCATIONS.map((l) => l.id)
const file = cutsPath(resolve(env.LOCAL_DIR))

let relay: WanRelay
try {
  const rtt = loadRttTable(env.WAN_RTT_FILE)
  relay = await WanRelay.start({
    datacenters: datacenters.map((d) => d.id),
    edgeLocations,
    rtt,
    ports: env.WAN_PORTS,
    holdLimitBytes: env.WAN_HOLD_LIMIT_BYTES,
    log,
    gateways: {
      port: ports.natsGateway,
      regionOf: Object.fromEntries(datacenters.flatMap((d) => (d.region ? [[d.id, d.region]] : []))),
    },
  })
  log.info(
    {
      event: 'wan_listening',
      datacenters: datacenters.map((d) => d.id),
      edgeLocations,
      ports: env.WAN_PORTS,
      rttSource: rtt.source,
      holdLimitBytes: relay.holdLimit,
    },
    `relaying ${datacenters.length}x${datacenters.length} links` +
      (edgeLocations.length > 0
        ? ` and ${edgeLocations.length}x${datacenters.length} edge location legs (${edgeLocations.join(', ')})`
        : '') +
      ` on ${env.WAN_PORTS.length} ports`
  )
} catch (error) {
  log.fatal({ event: 'wan_start_failed', error: errorMessage(error) }, errorMessage(error))
  process.exit(1)
}

// A new platform starts whole: cuts of a previous run are gone.
writeCutsFile(file, [])
let lastText = readFileSync(file, 'utf8')

/** Reads cuts.json when its text changed; applies it, or logs why not and keeps the last good cuts. */
function reread(): void {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    text = `(unreadable: ${errorMessage(error)})`
  }
  if (text === lastText) return
  lastText = text
  try {
    const cuts = readCutsFile(file, datacenters, edgeLocations)
    relay.setCuts(new CutSet(cuts))
    log.info({ event: 'wan_cuts', cuts }, `cuts now: ${describeCuts(cuts).join('; ')}`)
  } catch (error) {
    log.error(
      { event: 'wan_cuts_invalid', error: errorMessage(error), kept: relay.cuts.cuts },
      `ignored ${file}: ${errorMessage(error)}; keeping: ${describeCuts(relay.cuts.cuts).join('; ')}`
    )
  }
}

mkdirSync(dirname(file), { recursive: true })
const watcher = watch(dirname(file), (_event, name) => {
  if (name === 'cuts.json') reread()
})
watcher.on('error', (error) =>
  log.warn({ event: 'wan_watch_failed', error: error.message }, 'fs.watch failed; re-reading every second')
)
const poll = setInterval(reread, 1000)

const control = await serveHttp(
  (req, res) => {
    const path = new URL(req.url ?? '/', 'http://wan').pathname
    if (req.method === 'GET' && path === '/healthz') return sendJson(res, 200, { ok: true })
    if (req.method === 'GET' && path === '/state')
      return sendJson(res, 200, {
        datacenters,
        edgeLocations,
        ports: env.WAN_PORTS,
        cuts: relay.cuts.cuts,
        links: relay.links(),
      })
    sendJson(res, 404, { error: { code: 'not_found', message: 'GET /healthz or /state' } })
  },
  { host: '127.0.0.1', port: env.WAN_CONTROL_PORT }
).catch((error: unknown) => {
  log.fatal({ event: 'wan_start_failed', error: errorMessage(error) }, `control API: ${errorMessage(error)}`)
  process.exit(1)
})

const shutdown = async () => {
  clearInterval(poll)
  watcher.close()
  await control.close()
  await relay.close()
  process.exit(0)
}
process.on('SIGTERM', () => void shutdown())
process.on('SIGINT', () => void shutdown())
