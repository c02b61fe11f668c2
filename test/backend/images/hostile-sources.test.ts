/**
 * Hostile sources and requests: each is refused with its stable code and status, and none reaches a
 * private address. Listeners on 127.0.0.1 and [::1] (not on the allowlist) count every connection
 * attempt; the allowlisted local origin counts what it served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer, type Server } from 'node:net'
import type { AddressInfo } from 'node:net'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { imageErrors, type ImageErrorCode } from '#shared/images.ts'
import { freePort } from '../../../local/free-port.ts'
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.ts'
import { startService, type TestService } from '../../support/backend-service.ts'
import { BIG_BYTES, startOriginServer, type OriginServer } from '../../support/origin-server.ts'
import * as fixtures from '../../support/image-fixtures.ts'
import { requestTransform } from './transform-client.ts'
import { natsAuth } from '../../support/nats-credentials.ts'

let nats: TestNatsServer
let origin: OriginServer
let service: TestService
let nc: NatsConnection
const traps: { v4: Trap; v6: Trap } = {} as never
let closedPort: number

interface Trap {
  port: number
  connections: number
  server: Server
}

async function trap(host: string): Promise<Trap> {
  const t = { port: 0, connections: 0, server: createServer((socket) => socket.destroy()) }
  t.server.on('connection', () => t.connections++)
  await new Promise<void>((resolve) => t.server.listen(0, host, resolve))
  t.port = (t.server.address() as AddressInfo).port
  return t
}

beforeAll(async () => {
  nats = await startNatsServer('images-hostile')
  traps.v4 = await trap('127.0.0.1')
  traps.v6 = await trap('::1')
  closedPort = await freePort()
  origin = await startOriginServer({
    'photo.jpg': { body: await fixtures.photoLikeJpeg(400, 300), contentType: 'image/jpeg' },
    'bomb.png': { body: await fixtures.pngBomb(50_000, 50_000), contentType: 'image/png' },
    'truncated.jpg': {
      body: fixtures.truncated(await fixtures.photoLikeJpeg(800, 600)),
      contentType: 'image/jpeg',
    },
    'page.jpg': { body: fixtures.htmlPage, contentType: 'image/jpeg' },
    'script.svg': { body: fixtures.svgWithScript, contentType: 'image/svg+xml' },
    'script-posing.png': { body: fixtures.svgWithScript, contentType: 'image/png' },
  })
  service = await startService('images', {
    DC: 'fra',
    NATS_URL: nats.url,
    // The local origin by explicit origin; `localhost` as a host name (resolves to loopback, so it must
    // reach nothing); a closed port on loopback as an explicit origin (connection refused).
    IMAGE_SOURCE_HOSTS: `${origin.origin},localhost,127.0.0.1:${closedPort}`,
    IMAGE_FETCH_TIMEOUT_MS: '3000',
    IMAGE_FETCH_CONNECT_TIMEOUT_MS: '1000',
  })
  nc = await connect({ servers: nats.url, ...natsAuth() })
})

afterAll(async () => {
  await nc?.close()
  await service?.stop()
  await origin?.close()
  for (const t of Object.values(traps)) await new Promise((resolve) => t?.server.close(resolve))
  await nats?.dispose()
})

const file = (name: string) => origin.fileUrl(name)
const redirectTo = (to: string) => `${origin.url}/redirect?to=${encodeURIComponent(to)}`

const cases: Array<{ name: string; source: () => string; code: ImageErrorCode }> = [
  { name: 'loopback', source: () => `http://127.0.0.1:${traps.v4.port}/`, code: 'source_address_blocked' },
  { name: 'IPv6 loopback', source: () => `http://[::1]:${traps.v6.port}/`, code: 'source_address_blocked' },
  {
    name: 'the unspecified address (reaches localhost)',
    source: () => `http://0.0.0.0:${traps.v4.port}/`,
    code: 'source_address_blocked',
  },
  {
    name: 'cloud metadata',
    source: () => 'http://169.254.169.254/latest/meta-data',
    code: 'source_address_blocked',
  },
  {
    name: 'AWS IPv6 metadata',
    source: () => 'http://[fd00:ec2::254]/latest/meta-data',
    code: 'source_address_blocked',
  },
  { name: 'private 10/8', source: () => 'http://10.0.0.1/a.png', code: 'source_address_blocked' },
  { name: 'private 192.168/16', source: () => 'http://192.168.1.1/a.png', code: 'source_address_blocked' },
  { name: 'CGNAT 100.64/10', source: () => 'http://100.64.0.1/a.png', code: 'source_address_blocked' },
  { name: 'IPv6 link-local', source: () => 'http://[fe80::1]/a.png', code: 'source_address_blocked' },
  {
    name: 'IPv4-mapped IPv6 loopback',
    source: () => `http://[::ffff:127.0.0.1]:${traps.v4.port}/`,
    code: 'source_address_blocked',
  },
  {
    name: 'NAT64 of loopback',
    source: () => `http://[64:ff9b::7f00:1]:${traps.v4.port}/`,
    code: 'source_address_blocked',
  },
  {
    name: 'decimal IPv4 (2130706433)',
    source: () => `http://2130706433:${traps.v4.port}/`,
    code: 'source_address_blocked',
  },
  {
    name: 'octal IPv4 (0177.0.0.1)',
    source: () => `http://0177.0.0.1:${traps.v4.port}/`,
    code: 'source_address_blocked',
  },
  {
    name: 'hex IPv4 (0x7f.1)',
    source: () => `http://0x7f.1:${traps.v4.port}/`,
    code: 'source_address_blocked',
  },
  {
    name: 'a host not on the allowlist',
    source: () => 'https://evil.example.com/cat.png',
    code: 'source_host_not_allowed',
  },
  {
    name: 'a public IP not on the allowlist',
    source: () => 'http://93.184.216.34/cat.png',
    code: 'source_host_not_allowed',
  },
  {
    name: 'an allowlisted host name resolving to loopback',
    source: () => 'http://localhost/',
    code: 'source_address_blocked',
  },
  {
    name: "an allowlisted host name on another port than its scheme's",
    source: () => `http://localhost:${traps.v4.port}/`,
    code: 'source_host_not_allowed',
  },
  {
    name: 'a redirect to loopback',
    source: () => redirectTo(`http://127.0.0.1:${traps.v4.port}/x.png`),
    code: 'source_address_blocked',
  },
  {
    name: 'a redirect to IPv6 loopback',
    source: () => redirectTo(`http://[::1]:${traps.v6.port}/x.png`),
    code: 'source_address_blocked',
  },
  {
    name: 'a redirect to an allowlisted name on loopback',
    source: () => redirectTo('http://localhost/'),
    code: 'source_address_blocked',
  },
  {
    name: 'a redirect to a host not on the allowlist',
    source: () => redirectTo('http://evil.example.com/x.png'),
    code: 'source_host_not_allowed',
  },
  {
    name: 'a redirect to file://',
    source: () => redirectTo('file:///etc/passwd'),
    code: 'source_scheme_not_allowed',
  },
  { name: 'file://', source: () => 'file:///etc/passwd', code: 'source_scheme_not_allowed' },
  { name: 'data:', source: () => 'data:image/png;base64,iVBORw0KGgo=', code: 'source_scheme_not_allowed' },
  {
    name: 'gopher://',
    source: () => `gopher://127.0.0.1:${traps.v4.port}/_GET`,
    code: 'source_scheme_not_allowed',
  },
  { name: 'ftp://', source: () => 'ftp://example.com/a.png', code: 'source_scheme_not_allowed' },
  {
    name: 'credentials in the URL',
    source: () => `http://user:pw@${origin.origin}/files/photo.jpg`,
    code: 'source_invalid_url',
  },
  { name: 'not a URL', source: () => 'not a url', code: 'source_invalid_url' },
  {
    name: 'more than 3 redirects',
    source: () => `${origin.url}/chain/4/files/photo.jpg`,
    code: 'source_too_many_redirects',
  },
  { name: 'a 404', source: () => `${origin.url}/status/404`, code: 'source_not_found' },
  { name: 'a 500', source: () => `${origin.url}/status/500`, code: 'source_http_error' },
  {
    name: 'connection refused',
    source: () => `http://127.0.0.1:${closedPort}/a.png`,
    code: 'source_unreachable',
  },
  { name: 'a 50000x50000 PNG bomb', source: () => file('bomb.png'), code: 'image_too_many_pixels' },
  { name: 'a truncated JPEG', source: () => file('truncated.jpg'), code: 'image_unreadable' },
  { name: 'an HTML page posing as a JPEG', source: () => file('page.jpg'), code: 'source_not_an_image' },
  { name: 'an SVG with a script', source: () => file('script.svg'), code: 'source_not_an_image' },
  { name: 'an SVG posing as a PNG', source: () => file('script-posing.png'), code: 'source_not_an_image' },
]

describe('hostile sources', () => {
  it.each(cases)('refuses $name with $code', async ({ source, code }) => {
    const before = traps.v4.connections + traps.v6.connections
    const answer = await requestTransform(nc, { source: source() })
    expect(answer.error?.code, answer.error?.message).toBe(code)
    expect(answer.status).toBe(imageErrors[code])
    expect(answer.contentType).toBe('application/json')
    expect(traps.v4.connections + traps.v6.connections).toBe(before)
  })

  it('says which variable allows a loopback origin, without naming the addresses a host name resolved to', async () => {
    const literal = await requestTransform(nc, { source: `http://127.0.0.1:${traps.v4.port}/` })
    expect(literal.error?.code).toBe('source_address_blocked')
    expect(literal.error?.message).toMatch(/only an explicit ip:port entry in IMAGE_SOURCE_HOSTS reaches/)
    const named = await requestTransform(nc, { source: 'http://localhost/' })
    expect(named.error?.code).toBe('source_address_blocked')
    expect(named.error?.message).toMatch(/IMAGE_SOURCE_HOSTS/)
    expect(named.error?.message).not.toMatch(/127\.0\.0\.1|::1/)
    const unlisted = await requestTransform(nc, { source: 'https://evil.example.com/cat.png' })
    expect(unlisted.error?.message).toBe(
      'the source host evil.example.com is not allowed (not in IMAGE_SOURCE_HOSTS)'
    )
  })

  it('follows up to 3 redirects on allowed hosts', async () => {
    const answer = await requestTransform(nc, { source: `${origin.url}/chain/3/files/photo.jpg` })
    expect(answer.status).toBe(200)
  })

  it('refuses a 40 MB source while streaming it, closing the connection early', async () => {
    const answer = await requestTransform(nc, { source: `${origin.url}/big` })
    expect(answer.error?.code).toBe('source_too_large')
    expect(answer.status).toBe(413)
    const big = origin.streams.big!
    await big.done
    expect(big.closedEarly).toBe(true)
    expect(big.bytesWritten).toBeLessThan(BIG_BYTES)
  })

  it('refuses a 40 MB source from its Content-Length before reading it', async () => {
    const answer = await requestTransform(nc, { source: `${origin.url}/big?declare=1` })
    expect(answer.error?.code).toBe('source_too_large')
    await origin.streams.big!.done
    expect(origin.streams.big!.closedEarly).toBe(true)
  })

  it('gives up on a source trickling one byte a second at the total timeout', async () => {
    const answer = await requestTransform(nc, { source: `${origin.url}/trickle` })
    expect(answer.error?.code).toBe('source_timeout')
    expect(answer.status).toBe(504)
    expect(answer.ms).toBeGreaterThan(2_500)
    expect(answer.ms).toBeLessThan(6_000)
    await origin.streams.trickle!.done
    expect(origin.streams.trickle!.closedEarly).toBe(true)
  })

  it.each([
    ['not JSON', '{nope'],
    ['an empty message', ''],
    ['no options', JSON.stringify({ source: 'https://www.dndbeyond.com/a.png' })],
    [
      'an unknown option (dpr is folded by the edge)',
      JSON.stringify({
        source: 'https://www.dndbeyond.com/a.png',
        options: { fit: 'cover', gravity: 'auto', format: 'webp', metadata: 'none', dpr: 2 },
      }),
    ],
    [
      'width 0',
      JSON.stringify({
        source: 'https://www.dndbeyond.com/a.png',
        options: { width: 0, fit: 'cover', gravity: 'auto', format: 'webp', metadata: 'none' },
      }),
    ],
    [
      'format auto (the edge resolves it)',
      JSON.stringify({
        source: 'https://www.dndbeyond.com/a.png',
        options: { fit: 'cover', gravity: 'auto', format: 'auto', metadata: 'none' },
      }),
    ],
    [
      'a huge source URL',
      JSON.stringify({
        source: `https://www.dndbeyond.com/${'a'.repeat(5000)}`,
        options: { fit: 'cover', gravity: 'auto', format: 'webp', metadata: 'none' },
      }),
    ],
  ])('answers a malformed request (%s) with invalid_request', async (_name, payload) => {
    const answer = await requestTransform(nc, payload)
    expect(answer.error?.code).toBe('invalid_request')
    expect(answer.status).toBe(400)
  })

  it('reached no private address and fetched only from the allowlisted origin', async () => {
    expect(traps.v4.connections).toBe(0)
    expect(traps.v6.connections).toBe(0)
    const metrics = await (await fetch(`${service.internalUrl}/metrics`)).text()
    expect(metrics).toMatch(/images_transforms_total\{outcome="source_address_blocked"[^}]*\} \d+/)
    expect(metrics).toMatch(/images_transforms_total\{outcome="invalid_request"[^}]*\} \d+/)
  })
})
