/** Message schemas that cross the edge/backend boundary, validated with zod on both sides. */
import { z } from 'zod'
import { datacenterIdSchema } from './catalogue.ts'
import { serviceNames } from './services.ts'

export const pingRequestSchema = z.strictObject({
  /** Who asks, for logs (e.g. `edge`). */
  from: z.string().max(64),
  sentAt: z.number(),
})
export type PingRequest = z.infer<typeof pingRequestSchema>

export const pingReplySchema = z.strictObject({
  dc: datacenterIdSchema,
  service: z.enum(serviceNames),
  at: z.number(),
})
export type PingReply = z.infer<typeof pingReplySchema>

export const serviceStateSchema = z.enum(['starting', 'ready', 'not_ready', 'stopping'])
export type ServiceState = z.infer<typeof serviceStateSchema>

export const heartbeatSchema = z.strictObject({
  dc: datacenterIdSchema,
  service: z.enum(serviceNames),
  state: serviceStateSchema,
  /** Milliseconds since the epoch when it was sent. */
  at: z.number(),
})
export type Heartbeat = z.infer<typeof heartbeatSchema>

/** The document a datacenter's web service serves at `GET /health`; the edge probes it. */
export const healthDocumentSchema = z.strictObject({
  dc: datacenterIdSchema,
  /** ok: NATS and JetStream ready and every service fresh; degraded: a service missing or stale; down: NATS or JetStream not ready. */
  status: z.enum(['ok', 'degraded', 'down']),
  nats: z.strictObject({ connected: z.boolean(), jetstream: z.boolean() }),
  services: z.record(
    z.string(),
    z.strictObject({
      state: z.union([serviceStateSchema, z.literal('stale')]),
      lastSeen: z.number().nullable(),
    })
  ),
  at: z.number(),
})
export type HealthDocument = z.infer<typeof healthDocumentSchema>
