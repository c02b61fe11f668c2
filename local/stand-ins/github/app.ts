/**
 * The GitHub App's side of the stand-in: one App (id and RSA key pair) installed on every owner's
 * repositories, one installation per owner. An RS256 App JWT (iss = app id, at most 10 minutes
 * long, checked with jose) buys an installation token that expires; `authOf` says who a request's
 * Authorization header names: an installation, the App, nobody, or bad credentials.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { jwtVerify, type KeyObject as JoseKey } from 'jose'

/** The stand-in's GitHub App id (the local platform's GITHUB_APP_ID). */
export const STAND_IN_APP_ID = 1_000_001

/**
 * The App's installation on an owner's repositories: one per owner. Codertocat's is 1, as in the
 * octokit example payload (release/deleted) the delivery fixtures take `installation` from.
 */
export function installationIdFor(owner: string): number {
  if (owner === 'Codertocat') return 1
  let h = 0x811c9dc5
  for (const c of owner.toLowerCase()) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0
  return 2 + (h % 90_000_000)
}

/** A fresh App private key (RSA 2048, PKCS#8 PEM), as GitHub generates one for an App. */
export function generateAppPrivateKey(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string
}

export type Auth =
  | { kind: 'none' }
  | { kind: 'installation'; token: string; installationId: number }
  | { kind: 'app' }
  | { kind: 'invalid'; message: string }

/** How a request log names a caller: `installation:<id>`, `app`, `none` or `invalid`. */
export const authLabel = (a: Auth) =>
  a.kind === 'installation' ? `installation:${a.installationId}` : a.kind

export function appAuthority(app: { id: number; privateKey: string }, tokenTtlMs: number) {
  const appPublicKey = createPublicKey(createPrivateKey(app.privateKey)) as unknown as JoseKey
  const tokens = new Map<string, { installationId: number; expiresAt: number }>()

  /** Who is calling: an installation token, the App (a valid App JWT), nobody, or bad credentials. */
  const authOf = async (authorization: string | undefined): Promise<Auth> => {
    const m = /^(?:token|bearer)\s+(\S+)$/i.exec(authorization ?? '')
    if (!m) return authorization ? { kind: 'invalid', message: 'Bad credentials' } : { kind: 'none' }
    const credential = m[1]!
    const token = tokens.get(credential)
    if (token)
      return token.expiresAt > Date.now()
        ? { kind: 'installation', token: credential, installationId: token.installationId }
        : { kind: 'invalid', message: 'Bad credentials' }
    if (credential.split('.').length !== 3) return { kind: 'invalid', message: 'Bad credentials' }
    try {
      const { payload } = await jwtVerify(credential, appPublicKey, { algorithms: ['RS256'] })
      const now = Math.floor(Date.now() / 1000)
      // GitHub's examples (and octokit) write iss as a number.
      if (String(payload.iss) !== String(app.id))
        return { kind: 'invalid', message: "'Issuer' claim ('iss') must be the App id" }
      // GitHub: at most 10 minutes into the future.
      if (typeof payload.exp !== 'number' || payload.exp > now + 600)
        return { kind: 'invalid', message: "'Expiration time' claim ('exp') is too far in the future" }
      return { kind: 'app' }
    } catch {
      return { kind: 'invalid', message: 'A JSON web token could not be decoded' }
    }
  }

  /** A new installation token, valid for `tokenTtlMs`. */
  const issueToken = (installationId: number) => {
    const token = `ghs_${randomBytes(18).toString('base64url')}`
    const expiresAt = Date.now() + tokenTtlMs
    tokens.set(token, { installationId, expiresAt })
    return { token, expiresAt }
  }

  return { authOf, issueToken, revokeTokens: () => tokens.clear() }
}
