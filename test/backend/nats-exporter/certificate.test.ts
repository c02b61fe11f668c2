/**
 * The WebSocket listener's certificate expiry: read by a real TLS handshake against certificates made
 * here with openssl (a CA, a leaf it signed, an expired leaf, and a stranger's), trusted only when they
 * chain to the configured CA and name the host, expired or not.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { createServer, type Server } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readCertificateExpiry } from '../../../backend/nats-exporter/certificate.ts'
import { freePort } from '../../../local/free-port.ts'
import { startExporter } from './exporter-process.ts'

let dir: string
const servers: Server[] = []
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })

/** A CA (openssl ca signs for any dates, the past too). */
function ca(name: string): string {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '30',
    '-subj',
    `/CN=${name}`
  )
  writeFileSync(join(dir, `${name}.index`), '')
  writeFileSync(join(dir, `${name}.serial`), '01\n')
  writeFileSync(
    join(dir, `${name}.cnf`),
    `[ca]\ndefault_ca = this\n[this]\ndatabase = ${name}.index\nnew_certs_dir = .\nserial = ${name}.serial\n` +
      `default_md = sha256\npolicy = any\ncopy_extensions = copy\nunique_subject = no\n[any]\ncommonName = supplied\n`
  )
  return name
}

function leaf(
  name: string,
  signer: string,
  dates: { start: string; end: string }
): { key: string; cert: string } {
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost'
  )
  openssl(
    'ca',
    '-batch',
    '-config',
    `${signer}.cnf`,
    '-notext',
    '-cert',
    `${signer}.pem`,
    '-keyfile',
    `${signer}.key`,
    '-startdate',
    dates.start,
    '-enddate',
    dates.end,
    '-in',
    `${name}.csr`,
    '-out',
    `${name}.pem`
  )
  return {
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    cert: readFileSync(join(dir, `${name}.pem`), 'utf8'),
  }
}

/** A TLS listener presenting `cert` (the NATS WebSocket listener's stand-in: only the handshake matters). */
async function listener(pair: { key: string; cert: string }): Promise<URL> {
  const server = createServer(pair, (socket) => socket.end())
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return new URL(`https://localhost:${(server.address() as AddressInfo).port}`)
}

const notAfter = (pem: string) => Math.floor(new Date(new X509Certificate(pem).validTo).getTime() / 1000)
const future = { start: '20250101000000Z', end: '20991231000000Z' }
const past = { start: '20200101000000Z', end: '20200201000000Z' }

let trusted: string
let valid: { key: string; cert: string }
let expired: { key: string; cert: string }
let strangers: { key: string; cert: string }

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vtta-ws-cert-'))
  trusted = readFileSync(join(dir, `${ca('origin-ca')}.pem`), 'utf8')
  valid = leaf('valid', 'origin-ca', future)
  expired = leaf('expired', 'origin-ca', past)
  ca('stranger-ca')
  strangers = leaf('strangers', 'stranger-ca', past)
})
afterAll(() => {
  for (const server of servers) server.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('readCertificateExpiry', () => {
  const read = (url: URL, ca?: string) => readCertificateExpiry(url, { ca, timeoutMs: 2_000 })

  it("reports a trusted certificate's notAfter", async () => {
    expect(await read(await listener(valid), trusted)).toEqual({ notAfter: notAfter(valid.cert) })
    expect(notAfter(valid.cert)).toBe(Date.UTC(2099, 11, 31) / 1000)
  })

  it('checks the certificate against the configured name when the address is another one', async () => {
    const byAddress = new URL((await listener(expired)).href.replace('localhost', '127.0.0.1'))
    const reading = await readCertificateExpiry(byAddress, {
      ca: trusted,
      servername: 'localhost',
      timeoutMs: 2_000,
    })
    expect(reading).toEqual({ notAfter: Date.UTC(2020, 1, 1) / 1000 })
    await expect(
      readCertificateExpiry(byAddress, { ca: trusted, servername: 'nats-fra1.vtta.io', timeoutMs: 2_000 })
    ).rejects.toThrow(/not for nats-fra1\.vtta\.io/)
  })

  it('trusts the certificate itself when it is configured as the CA', async () => {
    expect(await read(await listener(valid), valid.cert)).toEqual({ notAfter: notAfter(valid.cert) })
  })

  it('reports an expired certificate of the configured CA: the case the figure exists for', async () => {
    expect(await read(await listener(expired), trusted)).toEqual({ notAfter: Date.UTC(2020, 1, 1) / 1000 })
  })

  it("refuses a stranger's certificate, expired or not, and one for another host", async () => {
    await expect(read(await listener(strangers), trusted)).rejects.toThrow(
      /does not chain to the configured CA/
    )
    // Not in the system's roots either.
    await expect(read(await listener(valid))).rejects.toThrow(/not trusted/)
    const byAddress = new URL((await listener(valid)).href.replace('localhost', '127.0.0.1'))
    await expect(read(byAddress, trusted)).rejects.toThrow(/not trusted: ERR_TLS_CERT_ALTNAME_INVALID/)
    const expiredByAddress = new URL((await listener(expired)).href.replace('localhost', '127.0.0.1'))
    await expect(read(expiredByAddress, trusted)).rejects.toThrow(/not for 127\.0\.0\.1/)
  })

  it('gives up within its timeout when nothing answers the handshake', async () => {
    const silent = await freePort()
    const { createServer: plain } = await import('node:net')
    const server = plain(() => undefined)
    await new Promise<void>((resolve) => server.listen(silent, '127.0.0.1', resolve))
    try {
      const t0 = Date.now()
      await expect(
        readCertificateExpiry(new URL(`https://127.0.0.1:${silent}`), { timeoutMs: 300 })
      ).rejects.toThrow()
      expect(Date.now() - t0).toBeLessThan(1_500)
    } finally {
      server.close()
    }
  })
})

describe('the exporter', () => {
  it('reports the certificate expiry of its configured listener, even before its nats-server answers', async () => {
    const url = await listener(valid)
    const caFile = join(dir, 'origin-ca.pem')
    const unused = await freePort()
    const exporter = await startExporter(
      {
        DC: 'fra',
        NATS_URL: `nats://127.0.0.1:${unused}`,
        NATS_WS_TLS_URL: url.href,
        NATS_WS_TLS_CA_FILE: caFile,
      },
      { waitReady: false }
    )
    try {
      await expect
        .poll(
          () => exporter.value('nats_websocket_certificate_expiry_timestamp_seconds').catch(() => undefined),
          {
            timeout: 10_000,
          }
        )
        .toBe(notAfter(valid.cert))
      expect(await exporter.value('nats_exporter_server_up')).toBe(0)
      expect((await fetch(`${exporter.url}/readyz`)).status).toBe(503)
    } finally {
      await exporter.stop()
    }
  })
})
