/**
 * The GitHub stand-in is a GitHub App as GitHub serves one: App JWTs (RS256, iss = app id, at most
 * 10 minutes) for installation tokens and installation look-ups, tokens that expire and see only
 * their installation's repositories, rate-limit headers on every API answer.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT } from 'jose'
import { createPrivateKey } from 'node:crypto'
import {
  generateAppPrivateKey,
  installationIdFor,
  startGitHubStandIn,
  type GitHubStandIn,
} from '../../local/stand-ins/github/index.ts'
import { GitHubApp } from '../../backend/releases/github-api.ts'

let gh: GitHubStandIn
beforeAll(async () => {
  gh = await startGitHubStandIn({ tokenTtlMs: 1_500 })
})
afterAll(async () => {
  await gh?.stop()
})

const itemPiles = { id: 900_000_003, installation: installationIdFor('fantasycalendar') }
const appJwt = async (o: { key?: string; iss?: string; expiresIn?: number } = {}) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer(o.iss ?? String(gh.app.id))
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (o.expiresIn ?? 540))
    .sign(createPrivateKey(o.key ?? gh.app.privateKey))
const get = (path: string, authorization?: string) =>
  fetch(`${gh.url}${path}`, { headers: authorization ? { authorization } : {} })
const tokenFor = async (installationId: number) => {
  const res = await fetch(`${gh.url}/app/installations/${installationId}/access_tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await appJwt()}` },
  })
  expect(res.status).toBe(201)
  return ((await res.json()) as { token: string; expires_at: string }).token
}

describe('GitHub stand-in: the App flow', () => {
  it("gives @octokit/auth-app (the release service's GitHubApp) an installation token", async () => {
    const app = new GitHubApp({
      apiUrl: gh.url,
      appId: gh.app.id,
      privateKey: gh.app.privateKey,
      timeoutMs: 5_000,
    })
    expect(await app.installationToken(itemPiles.installation)).toMatch(/^ghs_/)
    await expect(app.installationToken(123)).rejects.toMatchObject({ code: 'installation_invalid' })
  })

  it('a revoked token is replaced by a new one on the next call', async () => {
    const app = new GitHubApp({
      apiUrl: gh.url,
      appId: gh.app.id,
      privateKey: gh.app.privateKey,
      timeoutMs: 5_000,
    })
    expect(await app.repository(itemPiles.installation, itemPiles.id)).toMatchObject({ id: itemPiles.id })
    gh.revokeTokens()
    const before = gh.requests().filter((r) => r.path.endsWith('/access_tokens')).length
    expect(await app.repository(itemPiles.installation, itemPiles.id)).toMatchObject({ id: itemPiles.id })
    expect(gh.requests().filter((r) => r.path.endsWith('/access_tokens')).length).toBe(before + 1)
  })

  it.each([
    ['another key', { key: generateAppPrivateKey() }],
    ['another issuer', { iss: '999' }],
    ['an expiry beyond 10 minutes', { expiresIn: 3600 }],
  ])('refuses an App JWT signed with %s', async (_, o) => {
    const res = await fetch(`${gh.url}/app/installations/${itemPiles.installation}/access_tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await appJwt(o)}` },
    })
    expect(res.status).toBe(401)
  })

  it('finds the installation of a repository with the App JWT only', async () => {
    const jwt = `Bearer ${await appJwt()}`
    const byName = await get('/repos/fantasycalendar/FoundryVTT-ItemPiles/installation', jwt)
    expect(await byName.json()).toMatchObject({ id: itemPiles.installation, app_id: gh.app.id })
    const byId = await get(`/repositories/${itemPiles.id}/installation`, jwt)
    expect(await byId.json()).toMatchObject({ id: itemPiles.installation })
    const token = await tokenFor(itemPiles.installation)
    expect((await get(`/repositories/${itemPiles.id}/installation`, `token ${token}`)).status).toBe(401)
  })

  it("a token sees its installation's repositories only (404 for another's), with rate-limit headers", async () => {
    const token = await tokenFor(itemPiles.installation)
    const own = await get(`/repositories/${itemPiles.id}`, `token ${token}`)
    expect(own.status).toBe(200)
    expect(await own.json()).toMatchObject({
      id: itemPiles.id,
      full_name: 'fantasycalendar/FoundryVTT-ItemPiles',
    })
    expect(own.headers.get('x-ratelimit-limit')).toBe('5000')
    expect(Number(own.headers.get('x-ratelimit-remaining'))).toBe(4999)
    expect(Number(own.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000)
    const other = await get('/repositories/186853002', `token ${token}`)
    expect(other.status).toBe(404)
  })

  it('tokens expire', async () => {
    const token = await tokenFor(itemPiles.installation)
    await sleep(1_700)
    expect((await get(`/repositories/${itemPiles.id}`, `token ${token}`)).status).toBe(401)
  })

  it('answers 403 with remaining 0 and the reset while rate-limited', async () => {
    gh.rateLimit({ seconds: 2 })
    const limited = await get(`/repositories/${itemPiles.id}`)
    expect(limited.status).toBe(403)
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0')
    const reset = Number(limited.headers.get('x-ratelimit-reset'))
    expect(reset * 1000).toBeGreaterThan(Date.now())
    await sleep(reset * 1000 - Date.now() + 100)
    expect((await get(`/repositories/${itemPiles.id}`)).status).toBe(200)
  })
})
