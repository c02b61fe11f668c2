/**
 * The nats-exporter's configuration (environment), validated once at start-up: a missing or bad
 * variable stops it with a message naming the variable (backend/runtime/config.ts). The seed comes
 * from `NATS_NKEY_SEED_FILE` (the Docker secret nats_seed_nats_exporter) like every service's.
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { baseConfigSchema } from '../runtime/config.ts'

/** Bounds every NATS request of a scrape so /metrics answers within Prometheus's scrape timeout (~5 s). */
const requestTimeout = z.coerce.number().int().min(100).max(2_000)

export const exporterConfigSchema = baseConfigSchema
  .pick({ DC: true, NATS_URL: true, NATS_NKEY_SEED: true, LOG_LEVEL: true, SHUTDOWN_GRACE_MS: true })
  .extend({
    /**
     * The name the datacenter's server must answer with (`nats-<dc>` in the swarm, the dc id locally):
     * figures of any other server are refused. Unset: whatever server NATS_URL reaches first.
     */
    NATS_SERVER_NAME: z.string().min(1).optional(),
    /**
     * Its only listener: /metrics, /healthz, /readyz, the kind every service keeps on its internal port
     * (hence the name); never published (stack.yml), the overlay and loopback only.
     */
    INTERNAL_HTTP_HOST: z.string().min(1).default('0.0.0.0'),
    INTERNAL_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(7777),
    /**
     * One request to the server (VARZ, JSZ, ROUTEZ, GATEWAYZ run at once; the stream leaders' JSZ
     * after them, with the same bound): a scrape takes at most twice this plus the TLS check.
     */
    NATS_REQUEST_TIMEOUT_MS: requestTimeout.default(1_500),
    /**
     * The datacenter's NATS WebSocket listener with TLS (`https://nats-<dc>:8443` in the swarm), whose
     * certificate's notAfter is reported. Unset: no TLS listener (`npm start`), no figure.
     */
    NATS_WS_TLS_URL: z
      .url({ protocol: /^https$/, error: 'must be an https://host:port URL' })
      .transform((text) => new URL(text))
      .optional(),
    /**
     * The name the listener's certificate is for, when the URL reaches it by another (in the swarm the
     * overlay name nats-<dc>, while the certificate is the public nats-<dc>.vtta.io's). Default: the URL's host.
     */
    NATS_WS_TLS_SERVERNAME: z.string().min(1).optional(),
    /** PEM file of the CA (or the certificate itself) the listener's certificate must chain to; default: the system's roots. */
    NATS_WS_TLS_CA_FILE: z
      .string()
      .min(1)
      .transform((path, ctx) => {
        try {
          return readFileSync(path, 'utf8')
        } catch (error) {
          const why = error instanceof Error && 'code' in error ? String(error.code) : String(error)
          ctx.addIssue({ code: 'custom', message: `cannot read ${path} (${why})` })
          return z.NEVER
        }
      })
      .optional(),
  })

export type ExporterConfig = z.infer<typeof exporterConfigSchema>
