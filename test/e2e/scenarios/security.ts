/**
 * The security review's attacks (issue 11) against the running local platform, which runs the
 * production security model: each attack that worked on commit 2fcd4d4 must fail here, with the
 * stable error it gets.
 */
import { describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import { wsconnect } from '@nats-io/nats-core'
import { datacenterAddresses } from '../../../local/addresses.ts'
import { datacenterState, type E2E } from '../context.ts'

const fra = datacenterAddresses(0)

const nearFra = { 'x-client-geo': '50.11,8.68' }

export function securityScenarios(
  e2e: E2E & { origin: { fileUrl(name: string, query?: string): string } }
): void {
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

  describe('security: the image proxy is no amplifier', () => {
    it("answers the review's amplification request 400, four at once, and every datacenter stays healthy", async () => {
      const attack = `${e2e.edge}/img/width=8192,height=8192,fit=pad,format=webp,blur=100.1/${e2e.origin.fileUrl('photo.jpg', 'v=amplify')}`
      const before = await Promise.all(['fra', 'ams', 'lon'].map((dc) => datacenterState(e2e.edge, dc)))
      const answers = await Promise.all(Array.from({ length: 4 }, () => fetch(attack, { headers: nearFra })))
      for (const res of answers) {
        expect(res.status).toBe(400)
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_option')
      }
      const after = await Promise.all(['fra', 'ams', 'lon'].map((dc) => datacenterState(e2e.edge, dc)))
      expect(after).toEqual(before)
      expect(after).not.toContain('down')
      const honest = await fetch(
        `${e2e.edge}/img/width=400,format=webp/${e2e.origin.fileUrl('photo.jpg', 'v=after-amplify')}`,
        { headers: nearFra }
      )
      expect(honest.status).toBe(200)
      expect(honest.headers.get('x-datacenter')).toBe('fra')
    })
  })
}
