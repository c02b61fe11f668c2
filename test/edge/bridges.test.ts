/**
 * The NatsBridges a request goes through (edge/nats/bridge-stub.ts, edge/nats/shard.ts): asked for
 * with the location hint of the datacenter's region, one set per edge region, sharded by a hash of the
 * request's key, and identical image misses still collapse in one of them.
 *
 * Placement itself cannot be observed here: one workerd process has no locations, and it accepts any
 * hint (even an unknown one) without a difference anyone could see. So these tests assert what the edge
 * asks for: the env's NATS_BRIDGE is a recording wrapper (recording-namespace.ts) that notes the
 * (name, options) of every getByName and forwards it to the real namespace.
 *
 * The test catalogue (global-setup.ts): fra, ams, lon (weur), nyc (enam), cut (Ushuaia), and syd
 * (Sydney: oc), the one with an image service.
 */
import { describe, expect, it } from 'vitest'
import { env } from 'cloudflare:workers'
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { sign } from '@octokit/webhooks-methods'
import worker from '../../edge/index.ts'
import { imageCacheKey } from '../../edge/images/cache.ts'
import { shardOf } from '../../edge/nats/shard.ts'
import { imageRequestHeaders, parseImageOptions } from '#shared/images.ts'
import { locationHints } from '#shared/catalogue.ts'
import { subjects } from '#shared/subjects.ts'
import { recordingNamespace } from './recording-namespace.ts'

const nearSydney = '-33.87,151.21'
const boston = '42.36,-71.06'
const frankfurt = '50.11,8.68'
const icon = `${env.IMAGE_ORIGIN}/files/icon.png`

/** A request through the Worker with NATS_BRIDGE recorded and a few vars changed; its calls. */
async function call(
  path: string,
  headers: Record<string, string>,
  vars: Record<string, string> = {},
  init: RequestInit = {}
) {
  const { namespace, calls } = recordingNamespace(env.NATS_BRIDGE)
  const ctx = createExecutionContext()
  const res = await worker.fetch(
    new Request(`https://edge.test${path}`, { ...init, headers }),
    { ...env, ...vars, NATS_BRIDGE: namespace },
    ctx
  )
  await waitOnExecutionContext(ctx)
  return { res, calls }
}

/** The cache key URL of `width=24,format=png` of `source`: what the image route shards by. */
function pngKey(source: string): string {
  const parsed = parseImageOptions('width=24,format=png')
  if (!parsed.ok) throw new Error(parsed.message)
  return imageCacheKey({ ...parsed.options, format: 'png' }, source).url
}

let ip = 0
/** A client address of its own per miss: the tests' rate limit is 20 misses a minute per address. */
const client = (geo: string) => ({ 'x-client-geo': geo, 'cf-connecting-ip': `198.51.100.${++ip}` })

async function transformsOk(): Promise<number> {
  const text = await (await fetch(`${env.IMAGE_SERVICE}/metrics`)).text()
  const line = text
    .split('\n')
    .find((l) => l.startsWith('images_transforms_total{') && l.includes('outcome="ok"'))
  return line ? Number(line.split(' ').at(-1)) : 0
}

describe("bridges are asked for in their datacenter's region", () => {
  it("asks for an image miss from near Sydney the bridge of (syd, edge region oc), hinted to syd's region", async () => {
    const { res, calls } = await call(`/img/width=24,format=png/${icon}?placed`, client(nearSydney))
    expect(res.status).toBe(200)
    expect(res.headers.get('x-datacenter')).toBe('syd')
    expect(calls).toEqual([{ name: 'syd/oc/0', options: { locationHint: 'oc' } }])
  })

  it("names the bridge by the client's edge region, and places it by the datacenter's", async () => {
    const fromBoston = await call('/health/syd', { 'x-client-geo': boston })
    expect(fromBoston.res.status).toBe(200)
    expect(fromBoston.calls).toEqual([{ name: 'syd/enam/0', options: { locationHint: 'oc' } }])
    const fromSydney = await call('/health/fra', { 'x-client-geo': nearSydney })
    expect(fromSydney.res.status).toBe(200)
    expect(fromSydney.calls).toEqual([{ name: 'fra/oc/0', options: { locationHint: 'weur' } }])
  })

  it("with the WAN's legs, names the bridge by edge location and datacenter, still hinted at the datacenter", async () => {
    const catalogue = JSON.parse(env.DATACENTERS) as Array<{ id: string; endpoints: unknown }>
    // Every leg is the target's own endpoints: the names are the point here, not the WAN.
    const legs = Object.fromEntries(
      catalogue.map((home) => [home.id, Object.fromEntries(catalogue.map((dc) => [dc.id, dc.endpoints]))])
    )
    const { res, calls } = await call(
      '/health/lon',
      { 'x-client-geo': boston },
      { DATACENTER_LEGS: JSON.stringify(legs) }
    )
    expect(res.status).toBe(200)
    expect(calls).toEqual([{ name: 'nyc>lon/0', options: { locationHint: 'weur' } }])
  })

  it("gets a working bridge from workerd's getByName with each documented hint", async () => {
    // Locally this only shows the option does not break getByName: workerd ignores the hint.
    for (const hint of locationHints) {
      const bridge = env.NATS_BRIDGE.getByName(`hint-check/${hint}`, { locationHint: hint })
      expect(await bridge.connects()).toBe(0)
    }
  })
})

describe('bridges are sharded by a hash of the request key', () => {
  it('gives a key the same shard every time, within range, and one shard when there is one', () => {
    const keys = Array.from({ length: 64 }, (_, i) => `https://image-cache.vtta.internal/k${i}`)
    for (const shards of [1, 2, 3, 4, 64]) {
      const first = keys.map((k) => shardOf(k, shards))
      expect(keys.map((k) => shardOf(k, shards))).toEqual(first)
      for (const shard of first) expect(shard >= 0 && shard < shards && Number.isInteger(shard)).toBe(true)
    }
    expect(keys.map((k) => shardOf(k, 1))).toEqual(keys.map(() => 0))
    expect(new Set(keys.map((k) => shardOf(k, 4)))).toEqual(new Set([0, 1, 2, 3]))
    // FNV-1a 32-bit: the hash Node computes too (the bridge benchmark routes by it).
    expect(shardOf('foobar', 2 ** 32)).toBe(0xbf9cf968)
    expect(() => shardOf('k', 0)).toThrow(RangeError)
  })

  it('spreads 16 image misses over several of 4 shards, each by its cache key', async () => {
    const sources = Array.from({ length: 16 }, (_, i) => `${icon}?shard=${i}`)
    const names: string[] = []
    for (const source of sources) {
      const { res, calls } = await call(`/img/width=24,format=png/${source}`, client(nearSydney), {
        BRIDGE_SHARDS: '4',
      })
      expect(res.status).toBe(200)
      expect(calls).toHaveLength(1)
      expect(calls[0]!.options).toEqual({ locationHint: 'oc' })
      names.push(calls[0]!.name)
    }
    // Deterministic: the name is the cache key's shard, whichever isolate asks, so identical misses meet.
    expect(names).toEqual(sources.map((s) => `syd/oc/${shardOf(pngKey(s), 4)}`))
    expect(new Set(names).size).toBeGreaterThanOrEqual(2)
  })

  it('sends a redelivered webhook through the same bridge as the first (by its message id)', async () => {
    const post = async (body: string) =>
      call(
        '/webhooks/github',
        {
          'x-client-geo': frankfurt,
          'content-type': 'application/json',
          'x-github-event': 'release',
          'x-github-delivery': crypto.randomUUID(),
          'x-hub-signature-256': await sign("It's a Secret to Everybody", body),
        },
        { BRIDGE_SHARDS: '4' },
        { method: 'POST', body }
      )
    const names: string[] = []
    for (let i = 0; i < 8; i++) {
      const body = JSON.stringify({
        action: 'published',
        release: { id: 1600 + i },
        shard: crypto.randomUUID(),
      })
      const first = await post(body)
      const again = await post(body)
      expect([first.res.status, again.res.status]).toEqual([202, 202])
      expect(await again.res.json()).toMatchObject({ duplicate: true })
      expect(again.calls.map((c) => c.name)).toEqual(first.calls.map((c) => c.name))
      names.push(first.calls[0]!.name)
    }
    for (const name of names) expect(name).toMatch(/^fra\/weur\/[0-3]$/)
    expect(new Set(names).size).toBeGreaterThanOrEqual(2)
  })

  it('takes /health/<dc> by the request id', async () => {
    const shards = new Set<string>()
    for (let i = 0; i < 8; i++) {
      const id = `bridge-shard-${i}`
      const { res, calls } = await call(
        '/health/fra',
        { 'x-client-geo': frankfurt, 'x-request-id': id },
        { BRIDGE_SHARDS: '4' }
      )
      expect(res.status).toBe(200)
      expect(calls.map((c) => c.name)).toEqual([`fra/weur/${shardOf(id, 4)}`])
      shards.add(calls[0]!.name)
    }
    expect(shards.size).toBeGreaterThanOrEqual(2)
  })
})

describe('identical image misses still collapse in one bridge', () => {
  /** The transform request the image route sends for `source`, asked of `bridge` under `collapseKey`. */
  const transform = (
    bridge: ReturnType<typeof env.NATS_BRIDGE.getByName>,
    source: string,
    collapseKey: string
  ) => {
    const parsed = parseImageOptions('width=24,format=png')
    if (!parsed.ok) throw new Error(parsed.message)
    return bridge.requestStream(
      {
        dc: 'syd',
        subject: subjects.imageTransform('syd'),
        payload: JSON.stringify({ source, options: { ...parsed.options, format: 'png' } }),
        timeoutMs: 10_000,
        headers: { [imageRequestHeaders.deadline]: String(Date.now() + 10_000) },
      },
      collapseKey
    )
  }

  it('makes one transform of 10 concurrent identical misses on the stub a miss is sent to', async () => {
    // The route collapses identical misses of one isolate before they reach a bridge: ask the bridge
    // the route names directly, as misses from several isolates of one edge region would.
    const source = `${env.IMAGE_ORIGIN}/slow/300/files/icon.png?collapse=${crypto.randomUUID()}`
    const { calls } = await call(`/img/width=24,format=png/${icon}?collapse-name`, client(nearSydney), {
      BRIDGE_SHARDS: '4',
    })
    const named = calls[0]!
    const stub = env.NATS_BRIDGE.getByName(named.name, named.options)
    const before = await transformsOk()
    const replies = await Promise.all(
      Array.from({ length: 10 }, () => transform(stub, source, pngKey(source)))
    )
    for (const reply of replies) expect(reply.ok).toBe(true)
    expect(await transformsOk()).toBe(before + 1)

    // Two different misses at once are two transforms: the count above is of collapsing, not of caching.
    const others = [1, 2].map(
      (n) => `${env.IMAGE_ORIGIN}/slow/300/files/icon.png?other=${n}-${crypto.randomUUID()}`
    )
    const apart = await Promise.all(others.map((s) => transform(stub, s, pngKey(s))))
    for (const reply of apart) expect(reply.ok).toBe(true)
    expect(await transformsOk()).toBe(before + 3)
  })
})
