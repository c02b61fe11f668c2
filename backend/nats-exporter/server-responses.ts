/**
 * What nats-server answers to `$SYS.REQ.SERVER.<id>.VARZ|JSZ|ROUTEZ|GATEWAYZ`, as far as the
 * exporter reads it: `{ server, data }` or `{ server, error }`. Verified against nats-server 2.9.10
 * (Debian, `npm start`) and the same fields in 2.10 (stack.yml). Unknown fields pass; a missing field
 * the exporter needs makes the answer invalid, so a changed server never yields made-up figures.
 */
import { z } from 'zod'

const count = z.number().int().nonnegative()

export const varzSchema = z.object({
  server_id: z.string(),
  server_name: z.string(),
  version: z.string(),
  connections: count,
  slow_consumers: count,
  /** Resident memory, bytes. */
  mem: count,
  /** Percent of one core. */
  cpu: z.number().nonnegative(),
  routes: count,
  jetstream: z
    .object({ meta: z.object({ cluster_size: count.optional(), leader: z.string().optional() }).optional() })
    .optional(),
})
export type Varz = z.infer<typeof varzSchema>

/** A stream's or consumer's peers as this server knows them (the leader knows their lag). */
const clusterInfo = z.object({
  leader: z.string().optional(),
  replicas: z
    .array(
      z.object({
        name: z.string(),
        current: z.boolean(),
        /** Omitted when 0. */
        lag: count.optional(),
        offline: z.boolean().optional(),
      })
    )
    .optional(),
})

const consumerDetail = z.object({
  name: z.string(),
  cluster: clusterInfo.optional(),
  num_pending: count,
  num_ack_pending: count,
})

const streamDetail = z.object({
  name: z.string(),
  cluster: clusterInfo.optional(),
  /** This server's replica. */
  state: z.object({ messages: count, bytes: count, last_seq: count }),
  consumer_detail: z.array(consumerDetail).optional(),
})
export type StreamDetail = z.infer<typeof streamDetail>

export const jszSchema = z.object({
  server_id: z.string(),
  /** Set when JetStream is off on this server (e.g. disabled after its store ran out of space). */
  disabled: z.boolean().optional(),
  config: z.object({ max_storage: count }).optional(),
  /** File store used on this server, bytes. */
  storage: count.optional(),
  meta_cluster: z.object({ cluster_size: count.optional(), leader: z.string().optional() }).optional(),
  account_details: z
    .array(z.object({ name: z.string(), stream_detail: z.array(streamDetail).optional() }))
    .optional(),
})
export type Jsz = z.infer<typeof jszSchema>

export const routezSchema = z.object({
  server_id: z.string(),
  num_routes: count,
  routes: z.array(z.object({ remote_id: z.string() })).optional(),
})
export type Routez = z.infer<typeof routezSchema>

export const gatewayzSchema = z.object({
  server_id: z.string(),
  /** By gateway name; a gateway is up while its outbound connection exists. */
  outbound_gateways: z
    .record(z.string(), z.object({ connection: z.object({}).loose().optional() }))
    .optional(),
})
export type Gatewayz = z.infer<typeof gatewayzSchema>

/** The envelope: the data, or the server's error (e.g. an unknown request kind). */
export const answerSchema = z.object({
  server: z.object({ name: z.string(), id: z.string() }),
  data: z.unknown().optional(),
  error: z.object({ code: z.number().optional(), description: z.string() }).optional(),
})
