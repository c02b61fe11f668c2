/**
 * A `release` webhook delivery as GitHub sends it to a GitHub App: the payload (octokit's example
 * with this release, repository and `installation.id`), exactly GitHub's headers, and the body
 * signed with the webhook secret (X-Hub-Signature-256, and the legacy SHA-1 X-Hub-Signature).
 */
import { createHmac, randomUUID } from 'node:crypto'
import { sign } from '@octokit/webhooks-methods'
import { installationIdFor, STAND_IN_APP_ID } from './app.ts'
import { assetSizes } from './assets.ts'
import {
  fixtureModules,
  fixtureNames,
  GITHUB_TEST_SECRET,
  exampleDelivery,
  type FixtureName,
} from './fixtures.ts'
import { releaseJson } from './payloads.ts'
import { releaseIdFor, releaseSpecSchema, type ReleaseSpec, type ReleaseSpecInput } from './spec.ts'

export interface DeliveryOptions extends Partial<Omit<ReleaseSpecInput, 'fixture'>> {
  /** The stand-in's base URL (asset URLs point there). */
  gitHubUrl: string
  action?: string
  deliveryId?: string
  secret?: string
  hookId?: number
  /** The delivery's `installation.id` (default: the App's installation on the owner's repositories). */
  installationId?: number
  /** The App the delivery comes from (X-GitHub-Hook-Installation-Target-ID). */
  appId?: number
  /**
   * Last word on the payload, e.g. to drop `release` for a bad-input test; what it returns (a
   * payload or a string), if anything, is sent instead.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test forges any shape here, on purpose
  mutate?: (payload: Record<string, any>) => unknown
}

/** The `release` webhook payload: octokit's example with this release, repository and installation. */
export type DeliveryPayload = ReturnType<typeof deliveryPayload>

export interface Delivery {
  spec: ReleaseSpec
  deliveryId: string
  /** Exactly the headers GitHub sends (names as GitHub spells them). */
  headers: Record<string, string>
  /** The exact signed bytes. */
  body: string
}

/** A `release` delivery for a fixture module, signed (X-Hub-Signature-256) as GitHub does. */
export async function releaseDelivery(fixture: FixtureName, opts: DeliveryOptions): Promise<Delivery> {
  const module = fixtureModules[fixture]
  if (!module) throw new Error(`unknown fixture module "${fixture}" (known: ${fixtureNames.join(', ')})`)
  const version = opts.version ?? '1.0.0'
  const repositoryId = opts.repositoryId ?? module.repositoryId
  const spec = releaseSpecSchema.parse({
    fixture,
    owner: opts.owner ?? module.owner,
    repo: opts.repo ?? module.repo,
    repositoryId,
    releaseId: opts.releaseId ?? releaseIdFor(repositoryId, version),
    tag: opts.tag ?? `v${version}`,
    version,
    prerelease: opts.prerelease ?? false,
    draft: opts.draft,
    notes: opts.notes ?? `## What's Changed\n- ${module.repo} ${version}`,
    manifestPatch: opts.manifestPatch,
    zipManifestPatch: opts.zipManifestPatch,
    zip: opts.zip,
    manifestAsset: opts.manifestAsset,
    assetBaseUrl: opts.assetBaseUrl,
    slowZipMs: opts.slowZipMs,
    slowOnce: opts.slowOnce,
    publishedAt: opts.publishedAt ?? new Date().toISOString(),
  })
  const payload = deliveryPayload(spec, opts)
  const finalPayload = opts.mutate ? (opts.mutate(payload) ?? payload) : payload
  const body = typeof finalPayload === 'string' ? finalPayload : JSON.stringify(finalPayload)
  const deliveryId = opts.deliveryId ?? randomUUID()
  const secret = opts.secret ?? GITHUB_TEST_SECRET
  return {
    spec,
    deliveryId,
    body,
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': 'GitHub-Hookshot/044aadd',
      'X-GitHub-Event': 'release',
      'X-GitHub-Delivery': deliveryId,
      'X-GitHub-Hook-ID': String(opts.hookId ?? 292430182),
      'X-GitHub-Hook-Installation-Target-Type': 'integration',
      'X-GitHub-Hook-Installation-Target-ID': String(opts.appId ?? STAND_IN_APP_ID),
      'X-Hub-Signature': `sha1=${createHmac('sha1', secret).update(body).digest('hex')}`,
      'X-Hub-Signature-256': await sign(secret, body),
      'Content-Length': String(Buffer.byteLength(body)),
    },
  }
}

function deliveryPayload(spec: ReleaseSpec, opts: DeliveryOptions) {
  const t = exampleDelivery()
  const installationId = opts.installationId ?? installationIdFor(spec.owner)
  return {
    ...t,
    action: opts.action ?? (spec.prerelease ? 'prereleased' : 'published'),
    release: releaseJson(opts.gitHubUrl, spec, assetSizes(spec)),
    repository: {
      ...t.repository,
      id: spec.repositoryId,
      node_id: Buffer.from(`Repository${spec.repositoryId}`).toString('base64'),
      name: spec.repo,
      full_name: `${spec.owner}/${spec.repo}`,
      html_url: `https://github.com/${spec.owner}/${spec.repo}`,
      url: `https://api.github.com/repos/${spec.owner}/${spec.repo}`,
    },
    // As in GitHub App deliveries (octokit's release/deleted example carries the same shape).
    installation: {
      id: installationId,
      node_id: Buffer.from(`023:IntegrationInstallation${installationId}`).toString('base64'),
    },
  }
}
