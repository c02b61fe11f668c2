/**
 * The web service of a datacenter: the landing page, the datacenter's health document, the module
 * registry API (from its region's read mirror where the registry has one), the dashboard's figures from
 * Prometheus (dashboard.ts), and the `ping.<dc>` responder. Its HTTP routes answer only requests bearing
 * the edge's proof (origin-proof.ts).
 */
import { z } from 'zod'
import { baseConfigSchema, regionList } from '../runtime/config.ts'
import { runService } from '../runtime/service.ts'
import { HeartbeatRegistry } from './heartbeats.ts'
import { healthDocument } from './health-document.ts'
import { answerPings } from './ping.ts'
import { landingPage } from './landing-page.ts'
import { modulesApi } from './modules-api.ts'
import { dashboardApi, dashboardConfig } from './dashboard.ts'
import { accessAssertionConfig, originProofConfig, requireOriginProof } from './origin-proof.ts'
import { regionIdSchema } from '#shared/catalogue.ts'
import { mirrorCheckConfig } from '../registry/mirror-stall.ts'
import { MirrorFreshness } from '../registry/mirror-freshness.ts'

const configSchema = baseConfigSchema
  .extend({
    /** Human name of the datacenter for the landing page; defaults to its id. */
    DC_NAME: z.string().min(1).optional(),
    /**
     * The datacenter's region and the catalogue's home region (issue #15): outside the home region a
     * JetStream that does not answer is an ocean cut, not this datacenter's failure (health-document.ts).
     */
    REGION: regionIdSchema.optional(),
    JETSTREAM_HOME_REGION: regionIdSchema.optional(),
    /** The regions with a read mirror of the registry: in one of them, the service reads its region's. */
    REGISTRY_MIRROR_REGIONS: regionList(),
    ...mirrorCheckConfig,
    ...originProofConfig,
    ...dashboardConfig,
  })
  .superRefine((config, ctx) => {
    // The Access assertion is checked against the team domain that issues and signs it.
    if (config.ORIGIN_ACCESS_AUD !== undefined && config.ORIGIN_ACCESS_TEAM_DOMAIN === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['ORIGIN_ACCESS_TEAM_DOMAIN'],
        message: 'must be set with ORIGIN_ACCESS_AUD',
      })
  })

await runService({
  name: 'web',
  config: configSchema,
  start({ config, nc, nats, http, log, metrics }) {
    const heartbeats = new HeartbeatRegistry(config.HEARTBEAT_INTERVAL_MS * 3)
    heartbeats.listen(nc, config.DC, log)
    const pings = answerPings(nc, config.DC)

    http.use((_req, res, next) => {
      res.setHeader('x-datacenter', config.DC)
      next()
    })
    http.use(
      requireOriginProof({
        clientId: config.ORIGIN_CLIENT_ID,
        clientSecret: config.ORIGIN_CLIENT_SECRET,
        assertion: accessAssertionConfig(config),
      })
    )
    http.get('/', (_req, res) => {
      res.type('html').send(landingPage({ id: config.DC, name: config.DC_NAME ?? config.DC }))
    })
    http.get('/health', async (_req, res) => {
      const doc = await healthDocument(config.DC, nats, heartbeats, {
        awayFromHome:
          config.REGION !== undefined &&
          config.JETSTREAM_HOME_REGION !== undefined &&
          config.REGION !== config.JETSTREAM_HOME_REGION,
      })
      res.status(doc.status === 'down' ? 503 : 200).json(doc)
    })
    // Its region's read mirror of the registry, if it has one: registry reads stay in the region.
    const mirrorRegion =
      config.REGION !== undefined && config.REGISTRY_MIRROR_REGIONS.includes(config.REGION)
        ? config.REGION
        : undefined
    if (mirrorRegion) log.info({ mirrorRegion }, "registry read from the region's mirror")
    // A mirror that no longer follows Europe is read around, not believed (mirror-freshness.ts).
    const freshness =
      mirrorRegion === undefined
        ? undefined
        : new MirrorFreshness(nc, {
            region: mirrorRegion,
            intervalMs: config.REGISTRY_MIRROR_CHECK_MS,
            stallAfterMs: config.REGISTRY_MIRROR_STALL_MS,
            log,
            metrics: metrics.registry,
          })
    freshness?.start()
    http.use(modulesApi(nc, log, { mirrorRegion, freshness }))
    http.use(dashboardApi(config, log))

    return {
      async stop() {
        await Promise.all([pings.drain(), heartbeats.stop(), freshness?.stop()])
      },
    }
  },
})
