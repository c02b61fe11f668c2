import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts'
import { startService, type TestService } from '../support/backend-service.ts'
import { originProofHeaders, testOriginProof } from '../support/origin-proof.ts'
import { healthDocumentSchema, pingReplySchema, type Heartbeat } from '#shared/schemas.ts'
import { subjects } from '#shared/subjects.ts'
import { natsAuth } from '../support/nats-credentials.ts'

let nats: TestNatsServer
let web: TestService
let nc: NatsConnection

beforeAll(async () => {
  nats = await startNatsServer('web')
  web = await startService('web', {
    DC: 'fra',
    DC_NAME: 'Frankfurt',
    NATS_URL: nats.url,
    HEARTBEAT_INTERVAL_MS: '200',
  })
  nc = await connect({ servers: nats.url, ...natsAuth() })
})
afterAll(async () => {
  await nc?.close()
  await web?.stop()
  await nats?.dispose()
})

/** A request as the edge sends it: with its proof. */
const fromEdge = (path: string, init: RequestInit = {}) =>
  fetch(`${web.url}${path}`, { ...init, headers: { ...originProofHeaders(), ...(init.headers as object) } })

const health = async () => {
  const res = await fromEdge(`/health`)
  return { status: res.status, doc: healthDocumentSchema.parse(await res.json()) }
}
const beat = (service: Heartbeat['service'], state: Heartbeat['state'] = 'ready') =>
  nc.publish(
    subjects.heartbeat('fra', service),
    JSON.stringify({ dc: 'fra', service, state, at: Date.now() })
  )

describe('web service', () => {
  it('serves a landing page naming its datacenter', async () => {
    const res = await fromEdge(`/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    expect(res.headers.get('x-datacenter')).toBe('fra')
    const html = await res.text()
    expect(html).toContain('<title>vtta.io</title>')
    expect(html).toContain('Frankfurt (fra)')
  })

  it('serves the datacenter health document', async () => {
    const { status, doc } = await health()
    expect(status).toBe(200)
    expect(doc).toMatchObject({ dc: 'fra', status: 'ok', nats: { connected: true, jetstream: true } })
    expect(doc.services.web).toMatchObject({ state: 'ready' })
  })

  it('lists the other services of its datacenter from their heartbeats, and marks silent ones stale', async () => {
    beat('images')
    await expect.poll(async () => (await health()).doc.services.images?.state).toBe('ready')
    expect((await health()).doc.status).toBe('ok')
    // No more heartbeats: after three intervals the service is stale and the datacenter degraded.
    await expect
      .poll(async () => (await health()).doc.services.images?.state, { timeout: 3_000 })
      .toBe('stale')
    expect((await health()).doc.status).toBe('degraded')
  })

  it('ignores heartbeats that are malformed or claim another datacenter', async () => {
    nc.publish(subjects.heartbeat('fra', 'releases'), '{not json')
    nc.publish(
      subjects.heartbeat('fra', 'notifier'),
      JSON.stringify({ dc: 'ams', service: 'notifier', state: 'ready', at: 1 })
    )
    nc.publish(
      subjects.heartbeat('fra', 'releases'),
      JSON.stringify({ dc: 'fra', service: 'evil', state: 'ready', at: 1 })
    )
    await nc.flush()
    const { doc } = await health()
    expect(Object.keys(doc.services)).not.toContain('notifier')
    expect(Object.keys(doc.services)).not.toContain('evil')
    await expect
      .poll(async () => (await web.logs()).some((l) => l.msg === 'ignored malformed heartbeat'))
      .toBe(true)
  })

  it('answers ping.<dc> over NATS', async () => {
    const msg = await nc.request(subjects.ping('fra'), JSON.stringify({ from: 'test', sentAt: Date.now() }), {
      timeout: 2_000,
    })
    expect(pingReplySchema.parse(msg.json())).toMatchObject({ dc: 'fra', service: 'web' })
  })

  it.each(['', 'null', '{"from":1}', '[1,2]', 'x'.repeat(70_000)])(
    'answers a malformed ping %# with an error reply',
    async (payload) => {
      const msg = await nc.request(subjects.ping('fra'), payload, { timeout: 2_000 })
      expect(msg.json()).toMatchObject({ error: { code: 'bad_request' } })
    }
  )

  it('answers unknown routes with a JSON 404, never cached', async () => {
    const res = await fromEdge(`/wp-admin/../../etc/passwd`)
    expect(res.status).toBe(404)
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(await res.json()).toMatchObject({ error: { code: 'not_found' } })
  })

  it.each(['/', '/health', '/api/modules'])(
    'takes no body: a POST of malformed or 1 MB JSON to %s is 404 not_found, and it keeps serving',
    async (path) => {
      for (const body of ['{"a":', JSON.stringify({ a: 'x'.repeat(1_000_000) })]) {
        const res = await fromEdge(path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        })
        expect(res.status).toBe(404)
        expect(await res.json()).toMatchObject({ error: { code: 'not_found' } })
      }
      expect((await fromEdge(path)).status).toBe(200)
    }
  )

  it('refuses an oversized request head and keeps serving', async () => {
    const res = await fromEdge(`/`, { headers: { 'x-junk': 'x'.repeat(40_000) } })
    expect(res.status).toBe(431)
    expect((await fetch(`${web.internalUrl}/healthz`)).status).toBe(200)
  })

  it('exposes Prometheus metrics with bounded route labels', async () => {
    await fromEdge(`/random-${Math.random()}`)
    const text = await (await fetch(`${web.internalUrl}/metrics`)).text()
    expect(text).toMatch(
      /http_requests_total\{route="\/health",method="GET",status="200",service="web",dc="fra"\} \d+/
    )
    expect(text).toMatch(/http_requests_total\{route="unmatched",method="GET",status="404"/)
    expect(text).not.toMatch(/random-0\./)
    expect(text).toContain('nats_reconnects_total')
    expect(text).toContain('http_request_duration_seconds_bucket')
    expect(text).toContain('process_resident_memory_bytes')
  })
})

describe('health and metrics live on the internal port only', () => {
  it.each(['/metrics', '/healthz', '/readyz'])(
    '%s is not answered on the public port, even to the edge',
    async (path) => {
      const res = await fromEdge(path)
      expect(res.status).toBe(404)
      expect(await res.text()).not.toContain('process_resident_memory_bytes')
      expect((await fetch(`${web.url}${path}`)).status).toBe(403)
    }
  )

  it('answers them on the internal port, which serves nothing else', async () => {
    expect(await (await fetch(`${web.internalUrl}/metrics`)).text()).toContain(
      'process_resident_memory_bytes'
    )
    expect((await fetch(`${web.internalUrl}/healthz`)).status).toBe(200)
    expect((await fetch(`${web.internalUrl}/readyz`)).status).toBe(200)
    for (const path of ['/', '/health', '/api/modules']) {
      const res = await fetch(`${web.internalUrl}${path}`)
      expect(res.status).toBe(404)
      expect(await res.json()).toMatchObject({ error: { code: 'not_found' } })
    }
  })
})

describe('origin proof: the web service answers only the edge (finding M3)', () => {
  const proof = originProofHeaders()
  const idHeader = 'cf-access-client-id'
  const secretHeader = 'cf-access-client-secret'

  it.each([
    ['no proof', {}],
    ['the id only', { [idHeader]: proof[idHeader] }],
    ['the secret only', { [secretHeader]: proof[secretHeader] }],
    ['a wrong secret', { ...proof, [secretHeader]: `${proof[secretHeader].slice(0, -1)}X` }],
    ['a wrong id', { ...proof, [idHeader]: 'someone-else.access' }],
    ['the pair swapped', { [idHeader]: proof[secretHeader], [secretHeader]: proof[idHeader] }],
    ['an oversized secret', { ...proof, [secretHeader]: 'x'.repeat(8_000) }],
  ])('refuses a direct request with %s: 403 origin_proof_required', async (_case, headers) => {
    for (const path of ['/', '/health', '/api/modules', '/modules/item-piles/module.json', '/nope']) {
      const res = await fetch(`${web.url}${path}`, { headers })
      expect(res.status, path).toBe(403)
      expect(res.headers.get('cache-control'), path).toBe('no-store')
      expect(await res.json()).toMatchObject({ error: { code: 'origin_proof_required' } })
    }
  })

  it('serves the same paths with the proof', async () => {
    expect((await fromEdge('/')).status).toBe(200)
    expect((await fromEdge('/health')).status).toBe(200)
    expect((await fromEdge('/api/modules')).status).toBe(200)
  })

  it.each([
    ['an empty ORIGIN_CLIENT_ID', { ORIGIN_CLIENT_ID: '' }, 'ORIGIN_CLIENT_ID'],
    ['an empty ORIGIN_CLIENT_SECRET', { ORIGIN_CLIENT_SECRET: '' }, 'ORIGIN_CLIENT_SECRET'],
    // A secret is named, never echoed.
    [
      'a short ORIGIN_CLIENT_SECRET',
      { ORIGIN_CLIENT_SECRET: 'short' },
      'ORIGIN_CLIENT_SECRET: must be at least',
    ],
  ])('will not start with %s missing or bad: exit 78 naming it', async (_case, env, named) => {
    const svc = await startService('web', { DC: 'fra', NATS_URL: nats.url, ...env }, { waitReady: false })
    expect(await svc.proc.exited).toBe('exited with code 78')
    const [line] = await svc.logs()
    expect(line).toMatchObject({ level: 'fatal', service: 'web' })
    expect(line!.msg).toContain(named)
  })

  it('reads the secret from ORIGIN_CLIENT_SECRET_FILE (a Docker secret)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtta-origin-'))
    const file = join(dir, 'origin_client_secret')
    writeFileSync(file, `${testOriginProof.ORIGIN_CLIENT_SECRET}\n`)
    const svc = await startService('web', {
      DC: 'ams',
      NATS_URL: nats.url,
      ORIGIN_CLIENT_SECRET: undefined as unknown as string,
      ORIGIN_CLIENT_SECRET_FILE: file,
    })
    try {
      const res = await fetch(`${svc.url}/health`, { headers: originProofHeaders() })
      expect(res.status).toBe(200)
      expect((await fetch(`${svc.url}/health`)).status).toBe(403)
    } finally {
      await svc.stop()
    }
  })
})

describe("origin proof in production: Access's signed assertion as well (ORIGIN_ACCESS_AUD)", () => {
  const aud = 'ab'.repeat(32)
  let certs: Server
  let teamDomain: string
  let access: TestService
  let sign: (claims: { aud?: string; iss?: string; exp?: string }) => Promise<string>
  let signWithOtherKey: () => Promise<string>

  beforeAll(async () => {
    const key = await generateKeyPair('RS256')
    const other = await generateKeyPair('RS256')
    const jwk = { ...(await exportJWK(key.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }
    // Access publishes its keys at <team domain>/cdn-cgi/access/certs.
    certs = createServer((req, res) => {
      res.writeHead(req.url === '/cdn-cgi/access/certs' ? 200 : 404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: [jwk] }))
    })
    await new Promise<void>((resolve) => certs.listen(0, '127.0.0.1', resolve))
    teamDomain = `http://127.0.0.1:${(certs.address() as AddressInfo).port}`
    const jwt = (claims: { aud?: string; iss?: string; exp?: string }) =>
      new SignJWT({ type: 'app' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setAudience(claims.aud ?? aud)
        .setIssuer(claims.iss ?? teamDomain)
        .setIssuedAt()
        .setExpirationTime(claims.exp ?? '5m')
    sign = (claims) => jwt(claims).sign(key.privateKey)
    signWithOtherKey = () => jwt({}).sign(other.privateKey)
    access = await startService('web', {
      DC: 'lon',
      NATS_URL: nats.url,
      ORIGIN_ACCESS_AUD: aud,
      ORIGIN_ACCESS_TEAM_DOMAIN: teamDomain,
    })
  })
  afterAll(async () => {
    await access?.stop()
    await new Promise((resolve) => certs?.close(resolve))
  })

  const withAssertion = async (jwt: string | undefined, pair = true) =>
    (
      await fetch(`${access.url}/health`, {
        headers: {
          ...(pair ? originProofHeaders() : {}),
          ...(jwt ? { 'cf-access-jwt-assertion': jwt } : {}),
        },
      })
    ).status

  it('serves the pair with a valid assertion', async () => {
    expect(await withAssertion(await sign({}))).toBe(200)
  })

  it.each([
    ['no assertion', () => Promise.resolve(undefined)],
    ['another audience', async () => sign({ aud: 'cd'.repeat(32) })],
    ['another issuer', async () => sign({ iss: 'https://evil.cloudflareaccess.com' })],
    ['an expired one', async () => sign({ exp: '-1m' })],
    ['one signed by another key', async () => signWithOtherKey()],
    ['garbage', () => Promise.resolve('not.a.jwt')],
  ])('refuses the pair with %s: 403', async (_case, make) => {
    expect(await withAssertion(await make())).toBe(403)
  })

  it('refuses a valid assertion without the pair', async () => {
    expect(await withAssertion(await sign({}), false)).toBe(403)
  })

  it("an empty ORIGIN_ACCESS_AUD (stack.yml's default) asks for the pair only", async () => {
    const svc = await startService('web', {
      DC: 'ams',
      NATS_URL: nats.url,
      ORIGIN_ACCESS_AUD: '',
      ORIGIN_ACCESS_TEAM_DOMAIN: teamDomain,
    })
    try {
      expect((await fetch(`${svc.url}/health`, { headers: originProofHeaders() })).status).toBe(200)
    } finally {
      await svc.stop()
    }
  })

  it('will not start with an AUD tag but no team domain: exit 78 naming it', async () => {
    const svc = await startService(
      'web',
      { DC: 'fra', NATS_URL: nats.url, ORIGIN_ACCESS_AUD: aud },
      { waitReady: false }
    )
    expect(await svc.proc.exited).toBe('exited with code 78')
    expect((await svc.logs())[0]!.msg).toContain('ORIGIN_ACCESS_TEAM_DOMAIN')
  })
})
