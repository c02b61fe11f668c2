/**
 * Keeps JetStream's meta leader in the home region (issue #15). The home region holds a strict majority of
 * the meta group, so it keeps the quorum when an ocean is cut; but if the leader itself sits across that
 * ocean, every stream and consumer create waits for an election first (RAFT: quorum lost after 10 s, then
 * a new leader). nats-server 2.9 cannot place the meta leader: an election is won by whichever voter times
 * out first, and `$JS.API.META.LEADER.STEPDOWN` hands leadership to a random current peer (a placement in
 * the request is 2.10+). So: step down until the leader is a home server. With 2 of 5 voters outside the
 * home region, each step-down from outside lands home with probability 3/4.
 *
 * Needs a connection of the system account (the operator's `system` user): both the JSZ ping and the
 * step-down are system requests.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { nkeyAuthenticator, type NatsConnection } from '@nats-io/nats-core'
import { connect } from '@nats-io/transport-node'
import type { Catalogue } from '#shared/catalogue.ts'
import { homeRegion, multiRegion } from '#shared/regions.ts'
import { datacenterAddresses } from './addresses.ts'
import type { NatsCredentials } from './nats-auth/credentials.ts'
import { z } from 'zod'

const jszReply = z.object({
  data: z.object({ meta_cluster: z.object({ leader: z.string().optional() }).optional() }).optional(),
})

const stepDownReply = z.object({
  success: z.boolean().optional(),
  error: z.object({ description: z.string() }).optional(),
})

/** The meta leader's server name as the first JetStream server to answer knows it, or undefined. */
export async function metaLeader(nc: NatsConnection, maxWaitMs = 1_000): Promise<string | undefined> {
  // A server without JetStream answers too, without a leader: wait for one that knows it.
  const replies = await nc.requestMany('$SYS.REQ.SERVER.PING.JSZ', undefined, {
    strategy: 'timer',
    maxWait: maxWaitMs,
  })
  for await (const m of replies) {
    const parsed = jszReply.safeParse(m.json())
    const leader = parsed.success ? parsed.data.data?.meta_cluster?.leader : undefined
    if (leader) return leader
  }
  return undefined
}

export interface MetaLeaderPlacement {
  /** The meta leader once it is home. */
  leader: string
  /** Every leader seen, in order (the first is where the election left it). */
  leaders: string[]
  stepDowns: number
}

/**
 * Steps the meta leader down until `isHome(leader)` (server names), within `timeoutMs`. Resolves with the
 * leaders it saw; throws naming the last leader if it never got home.
 */
export async function keepMetaLeaderHome(
  nc: NatsConnection,
  isHome: (server: string) => boolean,
  timeoutMs = 60_000
): Promise<MetaLeaderPlacement> {
  const deadline = Date.now() + timeoutMs
  const leaders: string[] = []
  let stepDowns = 0
  for (;;) {
    const leader = await metaLeader(nc, 500)
    if (leader !== undefined && leader !== leaders.at(-1)) leaders.push(leader)
    if (leader !== undefined && isHome(leader)) return { leader, leaders, stepDowns }
    if (Date.now() > deadline)
      throw new Error(
        `the JetStream meta leader is ${leader ?? 'nobody'}, not home, after ${stepDowns} step-downs in ${timeoutMs} ms`
      )
    if (leader === undefined) {
      // Between a step-down and the next leader's first heartbeat.
      await sleep(200)
      continue
    }
    const reply = stepDownReply.parse(
      (await nc.request('$JS.API.META.LEADER.STEPDOWN', undefined, { timeout: 5_000 })).json()
    )
    if (reply.error) throw new Error(`meta leader step-down refused: ${reply.error.description}`)
    stepDowns++
    // The old leader answers before it hands over: wait for a new one.
    const stepped = Date.now()
    while (Date.now() - stepped < 10_000 && (await metaLeader(nc, 500)) === leader) await sleep(100)
  }
}

/**
 * npm start's use of the above: with several regions, once the servers are up, the meta leader is moved
 * into the home region (local servers are named after their datacenter). One region: nothing to do.
 * Returns what happened, for the supervisor's banner, or undefined.
 */
export async function placeLocalMetaLeader(
  catalogue: Catalogue,
  credentials: NatsCredentials
): Promise<MetaLeaderPlacement | undefined> {
  if (!multiRegion(catalogue)) return undefined
  const home = homeRegion(catalogue)
  const first = catalogue.findIndex((dc) => dc.id === home.jetStream[0]?.id)
  const nc = await connect({
    servers: datacenterAddresses(first).natsUrl,
    name: 'npm start (meta leader)',
    authenticator: nkeyAuthenticator(new TextEncoder().encode(credentials.seed('system'))),
  })
  try {
    return await keepMetaLeaderHome(nc, (server) => home.jetStream.some((dc) => dc.id === server))
  } finally {
    await nc.close()
  }
}
