/**
 * Downloading a release asset (backend/releases/assets.ts) from a real local origin: the outbound
 * fetcher's protections, and what each of its failures means for the release (refused for good, or
 * retried).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseAllowlist } from '../../../backend/outbound/allowlist.ts'
import { downloadAsset, type AssetLimits } from '../../../backend/releases/assets.ts'
import { Rejection, TransientError } from '../../../backend/releases/errors.ts'
import type { ReleaseAsset } from '../../../backend/releases/github-api.ts'
import { startOriginServer, type OriginServer } from '../../support/origin-server.ts'

let origin: OriginServer

beforeAll(async () => {
  origin = await startOriginServer({
    'module.zip': { body: Buffer.from('PK zip bytes'), contentType: 'application/zip' },
  })
})
afterAll(async () => {
  await origin?.close()
})

const limits = (hosts: string): AssetLimits => {
  const parsed = parseAllowlist(hosts, 'RELEASE_ASSET_HOSTS')
  if (!parsed.ok) throw new Error(parsed.message)
  return { allowlist: parsed.allowlist, timeoutMs: 5_000 }
}
const asset = (url: string): ReleaseAsset => ({
  id: 1,
  name: 'module.zip',
  url,
  browser_download_url: url,
  size: 12,
})
const download = (url: string, hosts = origin.origin) =>
  downloadAsset(asset(url), 1024, limits(hosts), 'token')

async function failure(url: string, hosts?: string): Promise<unknown> {
  try {
    await download(url, hosts)
  } catch (err) {
    return err
  }
  throw new Error(`${url} was downloaded`)
}

describe('release asset downloads', () => {
  it('reads an asset on an allowed origin, through redirects', async () => {
    expect(Buffer.from(await download(`${origin.url}/chain/3/files/module.zip`)).toString()).toBe(
      'PK zip bytes'
    )
  })

  it('refuses an asset host name that resolves to loopback', async () => {
    const err = await failure('http://localhost/files/module.zip', 'localhost')
    expect(err).toBeInstanceOf(Rejection)
    expect(err).toMatchObject({ code: 'asset_host_not_allowed' })
    expect(String(err)).toMatch(/asset module\.zip host localhost resolves to an address that is not allowed/)
  })

  it('refuses a redirect to a private address that is not an explicit origin', async () => {
    const to = encodeURIComponent(`http://10.0.0.1:${origin.port}/files/module.zip`)
    const err = await failure(`${origin.url}/redirect?to=${to}`)
    expect(err).toMatchObject({ code: 'asset_host_not_allowed' })
    expect(String(err)).toMatch(/redirect: asset module\.zip's address is not allowed \(private\)/)
  })

  it('refuses an asset behind more than three redirects', async () => {
    const err = await failure(`${origin.url}/chain/4/files/module.zip`)
    expect(err).toBeInstanceOf(Rejection)
    expect(err).toMatchObject({ code: 'asset_unavailable' })
    expect(String(err)).toMatch(/redirected more than 3 times/)
  })

  it('refuses a missing asset for good, and retries when the origin fails', async () => {
    expect(await failure(`${origin.url}/status/404`)).toMatchObject({ code: 'asset_missing' })
    const failed = await failure(`${origin.url}/status/503`)
    expect(failed).toBeInstanceOf(TransientError)
    expect(String(failed)).toMatch(/asset module\.zip: the origin answered 503/)
  })
})
