/**
 * The web service's health document (backend/web/health-document.ts): what a datacenter tells the edge when
 * NATS or JetStream is missing, in the home region and away from it (issue #15).
 */
import { describe, expect, it } from 'vitest'
import type { NatsConnection } from '@nats-io/nats-core'
import { healthDocument } from '../../backend/web/health-document.ts'
import { HeartbeatRegistry } from '../../backend/web/heartbeats.ts'

const nats = (connected: boolean, jetstream: boolean) => ({
  nc: undefined as unknown as NatsConnection,
  connected: () => connected,
  jetstreamReady: () => Promise.resolve(jetstream),
})
const heartbeats = () => new HeartbeatRegistry(10_000)

describe('the health document', () => {
  it.each([
    ['NATS gone, anywhere', false, false, true, 'down'],
    ['JetStream gone in the home region (its own server failed: a full disk)', true, false, false, 'down'],
    ['JetStream gone away from home (the ocean to the home region is cut)', true, false, true, 'degraded'],
    ['everything there', true, true, false, 'ok'],
  ] as const)('%s: %s', async (_case, connected, jetstream, awayFromHome, status) => {
    const doc = await healthDocument('sgp', nats(connected, jetstream), heartbeats(), { awayFromHome })
    expect(doc.status).toBe(status)
    expect(doc.nats).toEqual({ connected, jetstream: connected && jetstream })
  })
})
