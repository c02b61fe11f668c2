/**
 * What the release and notifier services create in JetStream is exactly shared/releases.ts's
 * jetStreamPlan (issue #15): every stream, KV bucket and object store, with its replicas and its
 * placement, the consistent ones in the home region, the registry's read mirrors in theirs. The deploy
 * check holds that plan against the production catalogue, so a stream a service creates outside it, or
 * places elsewhere, must fail here. Real services on a real nats-server, told a three-region layout as
 * production's tasks derive it (one replica: one server stands in for every region).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jetStreamPlan } from '#shared/releases.ts'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { startPipeline, type Pipeline } from '../../support/release-pipeline.ts'

const layout = { replicas: 1, homeRegion: 'eu', mirrorRegions: ['us', 'ap'] }

let nats: TestNatsServer
let p: Pipeline

beforeAll(async () => {
  // The release service's user may create the mirrors of these regions only (shared/nats-permissions.ts).
  nats = await startNatsServer('jetstream-plan', { mirrorRegions: layout.mirrorRegions })
  p = await startPipeline({
    natsUrls: [nats.url],
    replicas: layout.replicas,
    web: false,
    env: { JETSTREAM_HOME_REGION: layout.homeRegion },
    releasesEnv: { REGISTRY_MIRROR_REGIONS: layout.mirrorRegions.join(',') },
  })
}, 60_000)
afterAll(async () => {
  await p?.stop()
  await nats?.dispose()
})

describe('the streams the services create', () => {
  it('are the plan: each stream, its replicas and its placement', async () => {
    const created = []
    for await (const info of p.jsm.streams.list())
      created.push({
        stream: info.config.name,
        num_replicas: info.config.num_replicas,
        placement: info.config.placement,
        mirrorOf: info.config.mirror?.name,
      })
    const planned = jetStreamPlan(layout).map(({ stream, num_replicas, placement, mirrorOf }) => ({
      stream,
      num_replicas,
      placement,
      mirrorOf,
    }))
    const byName = (a: { stream: string }, b: { stream: string }) => a.stream.localeCompare(b.stream)
    expect(created.sort(byName)).toEqual(planned.sort(byName))
  })

  it('place every stream but the mirrors in the home region', () => {
    for (const s of jetStreamPlan(layout))
      expect(s.placement, s.stream).toEqual(
        s.mirrorOf
          ? { cluster: s.stream.slice(-2), tags: [`region:${s.stream.slice(-2)}`] }
          : { cluster: 'eu', tags: ['region:eu'] }
      )
  })
})
