/**
 * The web service answers only our edge. In production a datacenter's web endpoint is reachable only
 * through its Cloudflare Tunnel, behind a Cloudflare Access application whose Service Auth policy
 * admits one service token, the edge's; this check is the same proof enforced here as well (defence
 * in depth, and what the local platform exercises): a request without the exact pair
 * `CF-Access-Client-Id` / `CF-Access-Client-Secret` is refused 403 `origin_proof_required`.
 * Both values are compared in constant time (SHA-256 digests, so lengths leak nothing either).
 *
 * Optionally (ORIGIN_ACCESS_AUD and ORIGIN_ACCESS_TEAM_DOMAIN set, production only) the request must
 * also carry Access's own signed assertion, `Cf-Access-Jwt-Assertion`: an RS256 JWT for this
 * application's AUD tag, issued by the team domain, verified against the team's published keys
 * (fetched and cached by jose; an unknown key id refetches them).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { RequestHandler } from 'express'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { z } from 'zod'
import { HttpError } from '../runtime/http-errors.ts'

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
  /** The Access application's AUD tag: when set, a valid Cf-Access-Jwt-Assertion is required too. */
  ORIGIN_ACCESS_AUD: z
    .union([z.literal(''), z.string().regex(/^[0-9a-f]{16,128}$/, 'must be the AUD tag (hex)')])
    .optional()
    .transform((v) => v || undefined),
  /** The Zero Trust team domain, e.g. https://vtta.cloudflareaccess.com (issuer and key location). */
  ORIGIN_ACCESS_TEAM_DOMAIN: z
    .union([z.literal(''), z.url({ protocol: /^https?$/ })])
    .optional()
    .transform((u) => (u ? u.replace(/\/+$/, '') : undefined)),
}

export interface AccessAssertion {
  aud: string
  teamDomain: string
}

/** The assertion settings, or null when off (the service's config schema requires both or neither). */
export function accessAssertionConfig(config: {
  ORIGIN_ACCESS_AUD?: string | undefined
  ORIGIN_ACCESS_TEAM_DOMAIN?: string | undefined
}): AccessAssertion | null {
  const { ORIGIN_ACCESS_AUD: aud, ORIGIN_ACCESS_TEAM_DOMAIN: teamDomain } = config
  return aud !== undefined && teamDomain !== undefined ? { aud, teamDomain } : null
}

const digest = (s: string) => createHash('sha256').update(s).digest()

export function requireOriginProof(expected: {
  clientId: string
  clientSecret: string
  assertion?: AccessAssertion | null
}): RequestHandler {
  const id = digest(expected.clientId)
  const secret = digest(expected.clientSecret)
  const assertion = expected.assertion
  const keys = assertion
    ? createRemoteJWKSet(new URL(`${assertion.teamDomain}/cdn-cgi/access/certs`), { timeoutDuration: 5_000 })
    : null
  const verifyAssertion = async (jwt: string | undefined): Promise<boolean> => {
    if (!assertion || !keys) return true
    if (!jwt || jwt.length > 8_192) return false
    try {
      await jwtVerify(jwt, keys, {
        algorithms: ['RS256'],
        audience: assertion.aud,
        issuer: assertion.teamDomain,
      })
      return true
    } catch {
      return false
    }
  }
  return (req, _res, next) => {
    const givenId = req.get('cf-access-client-id') ?? ''
    const givenSecret = req.get('cf-access-client-secret') ?? ''
    // Both compared, always: the time taken does not say which one was wrong.
    const idOk = timingSafeEqual(digest(givenId), id)
    const secretOk = timingSafeEqual(digest(givenSecret), secret)
    const refuse = () => next(new HttpError('origin_proof_required'))
    if (!(idOk && secretOk)) return refuse()
    verifyAssertion(req.get('cf-access-jwt-assertion')).then((ok) => (ok ? next() : refuse()), next)
  }
}
