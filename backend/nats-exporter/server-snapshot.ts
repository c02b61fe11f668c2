/**
 * One scrape's view of this datacenter's nats-server, asked through the system account: VARZ, JSZ
 * (accounts, streams, consumers), ROUTEZ and GATEWAYZ, each addressed to the server's own id
 * (`$SYS.REQ.SERVER.<id>.<kind>`), so the figures are this server's whatever the cluster does.
 *
 * All or nothing: if any of the four does not answer in time, or answers an error, or another server
 * answers, the snapshot is `up: false` and carries no figures (no stale or partial numbers).
 *
 * A stream replica's lag and currency are known to the stream's leader only (a follower's JSZ lists
 * its peers, never itself), so for the streams another server leads, the exporter asks that leader's
 * JSZ (`$SYS.REQ.SERVER.PING.JSZ` filtered to its server_name, the only PING it may send) and reads
 * this server's entry. A leader that does not answer leaves those two figures out, nothing else.
 */
import type { NatsConnection } from '@nats-io/nats-core'
import { z } from 'zod'
import { errorMessage } from '#shared/error-message.ts'
import {
  answerSchema,
  gatewayzSchema,
  jszSchema,
  routezSchema,
  varzSchema,
  type Gatewayz,
  type Jsz,
  type Routez,
  type Varz,
} from './server-responses.ts'

export interface ReplicaState {
  current: boolean
  /** Operations behind the leader; absent when the leader did not say (leaderless, or it did not answer). */
  lag?: number
}

export type ServerSnapshot =
  | {
      up: true
      serverName: string
      varz: Varz
      jsz: Jsz
      routez: Routez
      gatewayz: Gatewayz
      /** This server's replica of each stream, by `<account> <stream>`. */
      replicas: Map<string, ReplicaState>
    }
  | { up: false; reason: string }

/** What JSZ is asked for: every account's streams with their consumers (config is not needed). */
const jszRequest = { accounts: true, streams: true, consumer: true, config: false }

export const replicaKey = (account: string, stream: string) => `${account} ${stream}`

class AnswerError extends Error {}

async function ask<T extends z.ZodType>(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  schema: T,
  timeoutMs: number,
  from: (server: { name: string; id: string }) => boolean
): Promise<z.infer<T>> {
  const reply = await nc.request(subject, body === undefined ? '' : JSON.stringify(body), {
    timeout: timeoutMs,
  })
  const answer = answerSchema.safeParse(reply.json())
  if (!answer.success)
    throw new AnswerError(`${subject}: unexpected answer (${z.prettifyError(answer.error)})`)
  if (!from(answer.data.server)) throw new AnswerError(`${subject}: answered by ${answer.data.server.name}`)
  if (answer.data.error) throw new AnswerError(`${subject}: ${answer.data.error.description}`)
  const data = schema.safeParse(answer.data.data)
  if (!data.success) throw new AnswerError(`${subject}: unexpected answer (${z.prettifyError(data.error)})`)
  return data.data
}

export async function takeSnapshot(
  nc: NatsConnection,
  opts: { timeoutMs: number; expectedServerName?: string }
): Promise<ServerSnapshot> {
  if (nc.isClosed()) return { up: false, reason: 'nats connection closed' }
  const info = nc.info
  if (!info) return { up: false, reason: 'not connected yet' }
  if (opts.expectedServerName !== undefined && info.server_name !== opts.expectedServerName)
    return { up: false, reason: `connected to ${info.server_name}, not ${opts.expectedServerName}` }
  const id = info.server_id
  const own = (server: { id: string }) => server.id === id
  const subject = (kind: string) => `$SYS.REQ.SERVER.${id}.${kind}`
  let varz: Varz, jsz: Jsz, routez: Routez, gatewayz: Gatewayz
  try {
    ;[varz, jsz, routez, gatewayz] = await Promise.all([
      ask(nc, subject('VARZ'), undefined, varzSchema, opts.timeoutMs, own),
      ask(nc, subject('JSZ'), jszRequest, jszSchema, opts.timeoutMs, own),
      ask(nc, subject('ROUTEZ'), undefined, routezSchema, opts.timeoutMs, own),
      ask(nc, subject('GATEWAYZ'), undefined, gatewayzSchema, opts.timeoutMs, own),
    ])
  } catch (error) {
    return { up: false, reason: errorMessage(error) }
  }
  const serverName = varz.server_name
  const replicas = await replicaStates(nc, serverName, jsz, opts.timeoutMs)
  return { up: true, serverName, varz, jsz, routez, gatewayz, replicas }
}

/** This server's replica of every stream it holds: current and lag, from the stream's leader. */
async function replicaStates(
  nc: NatsConnection,
  serverName: string,
  jsz: Jsz,
  timeoutMs: number
): Promise<Map<string, ReplicaState>> {
  const states = new Map<string, ReplicaState>()
  const ledElsewhere = new Set<string>()
  for (const account of jsz.account_details ?? [])
    for (const stream of account.stream_detail ?? []) {
      const key = replicaKey(account.name, stream.name)
      const leader = stream.cluster?.leader
      // Not clustered (a lone server), or led here: this replica is the reference.
      if (!stream.cluster || leader === serverName) states.set(key, { current: true, lag: 0 })
      // Leaderless (an election, or no quorum): nobody can vouch for this replica.
      else if (!leader) states.set(key, { current: false })
      else ledElsewhere.add(leader)
    }
  await Promise.all(
    [...ledElsewhere].map(async (leader) => {
      let view: Jsz
      try {
        view = await ask(
          nc,
          '$SYS.REQ.SERVER.PING.JSZ',
          { ...jszRequest, consumer: false, server_name: leader },
          jszSchema,
          timeoutMs,
          (server) => server.name === leader
        )
      } catch {
        return // lag and currency stay unknown for the streams it leads: reported as absent
      }
      for (const account of view.account_details ?? [])
        for (const stream of account.stream_detail ?? []) {
          if (stream.cluster?.leader !== leader) continue
          const mine = stream.cluster.replicas?.find((r) => r.name === serverName)
          if (mine)
            states.set(replicaKey(account.name, stream.name), { current: mine.current, lag: mine.lag ?? 0 })
        }
    })
  )
  return states
}
