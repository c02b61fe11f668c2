/**
 * The notAfter of the certificate the datacenter's NATS WebSocket listener presents (the one the edge
 * connects to through the tunnel), read by a TLS handshake and nothing more: no byte is sent over
 * the connection, which is closed as soon as the certificate is in.
 *
 * Trust: the certificate must chain to the configured CA (NATS_WS_TLS_CA_FILE; a Cloudflare Origin
 * CA certificate is not in the system's roots) and name the host, or the figure is left out (someone
 * answering on that address with a certificate of their own must not hide an expiry). The handshake
 * itself runs with rejectUnauthorized off for one reason only: an expired certificate, the very case
 * this figure exists for, fails verification, and its notAfter must still be read. Such a certificate
 * is then checked by hand (same host, signatures up to the configured CA) before it is reported.
 */
import { connect, type DetailedPeerCertificate } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { isIP } from 'node:net'

export interface CertificateReading {
  /** Seconds since the epoch. */
  notAfter: number
}

export async function readCertificateExpiry(
  url: URL,
  opts: {
    ca?: string
    /** The name the certificate must be for, when it is not the URL's host (the public name behind the tunnel). */
    servername?: string
    timeoutMs: number
  }
): Promise<CertificateReading> {
  const host = opts.servername ?? url.hostname
  const socket = connect({
    host: url.hostname,
    port: Number(url.port || 443),
    // SNI, and the name node checks the certificate against.
    servername: host,
    ca: opts.ca,
    // A leaf certificate given as the CA (the listener's own certificate) is a trust anchor too.
    allowPartialTrustChain: true,
    rejectUnauthorized: false,
  })
  try {
    // Rejects on the socket's 'error' too (refused, reset, handshake failure).
    await once(socket, 'secureConnect', { signal: AbortSignal.timeout(opts.timeoutMs) })
    const peer = socket.getPeerCertificate(true)
    if (!peer.raw) throw new Error('no certificate presented')
    if (!socket.authorized) {
      const why = String(socket.authorizationError)
      if (why !== 'CERT_HAS_EXPIRED') throw new Error(`certificate not trusted: ${why}`)
      verifyExpiredChain(peer, host, opts.ca)
    }
    return { notAfter: Math.floor(new Date(peer.valid_to).getTime() / 1000) }
  } finally {
    socket.destroy()
  }
}

/**
 * OpenSSL reports one error, the last: an expired certificate from an untrusted issuer may read as
 * expired only. So for an expired one: the host must match and each certificate must be signed by
 * the next, up to one of the configured CA certificates (or be that certificate).
 */
function verifyExpiredChain(peer: DetailedPeerCertificate, host: string, ca: string | undefined): void {
  if (!ca) throw new Error('certificate expired, and no CA is configured to check it against')
  const anchors = splitPem(ca).map((pem) => new X509Certificate(pem))
  const leaf = new X509Certificate(peer.raw)
  if ((isIP(host) ? leaf.checkIP(host) : leaf.checkHost(host)) === undefined)
    throw new Error(`certificate expired and not for ${host}`)
  let cert = leaf
  let next: DetailedPeerCertificate | undefined = peer.issuerCertificate
  for (let depth = 0; depth < 8; depth++) {
    if (anchors.some((a) => a.fingerprint256 === cert.fingerprint256)) return
    const anchor = anchors.find((a) => cert.checkIssued(a) && cert.verify(a.publicKey))
    if (anchor) return
    if (!next?.raw || next.raw.equals(cert.raw)) break
    const issuer = new X509Certificate(next.raw)
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) break
    cert = issuer
    next = next.issuerCertificate
  }
  throw new Error('certificate expired and does not chain to the configured CA')
}

const splitPem = (text: string): string[] =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
