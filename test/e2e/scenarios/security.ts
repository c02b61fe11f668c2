/**
 * The security review's attacks (issue 11) against the running local platform, which runs the
 * production security model: each attack that worked on commit 2fcd4d4 must fail here, with the
 * stable error it gets.
 */
import { describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import { wsconnect } from '@nats-io/nats-core'
import { datacenterAddresses } from '../../../local/addresses.ts'
import type { E2E } from '../context.ts'

const fra = datacenterAddresses(0)

export function securityScenarios(_e2e: E2E): void {
  describe('security: NATS takes no anonymous client', () => {
    it("refuses an anonymous WebSocket client on fra's NATS (the listener published for the edge)", async () => {
      await expect(wsconnect({ servers: fra.natsWsUrl, reconnect: false })).rejects.toThrow(
        /Authorization Violation/
      )
    })

    it("refuses an anonymous client on fra's NATS client port", async () => {
      await expect(connect({ servers: fra.natsUrl, reconnect: false })).rejects.toThrow(
        /Authorization Violation/
      )
    })
  })
}
