/**
 * The web service answers only our edge. In production a datacenter's web endpoint is reachable only
 * through its Cloudflare Tunnel, behind a Cloudflare Access application whose Service Auth policy
 * admits one service token, the edge's; this check is the same proof enforced here as well (defence
 * in depth, and what the local platform exercises): a request without the exact pair
 * `CF-Access-Client-Id` / `CF-Access-Client-Secret` is refused 403 `origin_proof_required`.
 * Both values are compared in constant time (SHA-256 digests, so lengths leak nothing either).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { RequestHandler } from 'express'
import { z } from 'zod'

/** Configuration of the proof (the web service's ORIGIN_CLIENT_ID / ORIGIN_CLIENT_SECRET[_FILE]). */
export const originProofConfig = {
  /** The Access service token's client id the edge presents. */
  ORIGIN_CLIENT_ID: z
    .string()
    .min(1)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII'),
  /** Its client secret: at least 32 random bytes. */
  ORIGIN_CLIENT_SECRET: z
    .string()
    .min(43, 'must be at least 43 characters (32 random bytes)')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII'),
}

const digest = (s: string) => createHash('sha256').update(s).digest()

export function requireOriginProof(expected: { clientId: string; clientSecret: string }): RequestHandler {
  const id = digest(expected.clientId)
  const secret = digest(expected.clientSecret)
  return (req, res, next) => {
    const givenId = req.get('cf-access-client-id') ?? ''
    const givenSecret = req.get('cf-access-client-secret') ?? ''
    // Both compared, always: the time taken does not say which one was wrong.
    const idOk = timingSafeEqual(digest(givenId), id)
    const secretOk = timingSafeEqual(digest(givenSecret), secret)
    if (idOk && secretOk) return next()
    res.setHeader('cache-control', 'no-store')
    res.status(403).json({
      error: {
        code: 'origin_proof_required',
        message: 'this endpoint answers only the vtta.io edge (Access service token required)',
      },
    })
  }
}
