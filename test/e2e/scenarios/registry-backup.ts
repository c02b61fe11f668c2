/**
 * Issue 14's backup drill on the local platform: release three modules through the edge, back the
 * registry up with `npm run registry:backup`, delete the registry's two streams as the operator
 * (the services' NATS users may not), restore with `npm run registry:restore`, purge the edge's
 * cache, and every manifest and zip is served again through the edge (a MISS: from a datacenter,
 * not the edge's cache) byte-identical to what it served before the deletion.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { jetstreamManager } from '@nats-io/jetstream'
import { kvStreamName, objStreamName, registryBuckets } from '#shared/releases.ts'
import { standIns } from '../../../local/addresses.ts'
import {
  postDelivery,
  registerRelease,
  releaseDelivery,
  releaseManifest,
  type FixtureName,
} from '../../../local/stand-ins/github/index.ts'
import { connectOperatorNats } from '../../../local/operator-nats.ts'
import { loadEdgeSecrets } from '../../../local/edge-secrets.ts'
import { readState } from '../../../local/state.ts'
import { projectRoot } from '../../../local/platform-specs.ts'
import { waitUntil, type E2E } from '../context.ts'

const nearAms = { 'x-client-geo': '52.37,4.90' }
// Newer than any version the scenarios before this one release (their highest is 8.8.8), so each is the latest.
const version = '100.0.0'
const fixtures: FixtureName[] = ['test-module', 'ddb-importer', 'vtta-core']
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

/** `npm run registry:<command>` against the platform in `localDir`; its stdout. */
async function registryCommand(localDir: string, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(projectRoot, 'local', 'registry-backup', 'command.ts'), ...args],
    { cwd: projectRoot, env: { ...process.env, LOCAL_DIR: localDir }, timeout: 120_000 }
  )
  return stdout
}

async function get(e2e: E2E, path: string) {
  const res = await fetch(`${e2e.edge}${path}`, { headers: nearAms })
  return {
    status: res.status,
    xCache: res.headers.get('x-cache'),
    body: new Uint8Array(await res.arrayBuffer()),
  }
}

async function purge(e2e: E2E, paths: string[]) {
  const token = loadEdgeSecrets(e2e.localDir, { create: false }).secrets.ADMIN_TOKEN
  const res = await fetch(`${e2e.edge}/admin/cache/purge`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ paths }),
  })
  expect(res.status).toBe(200)
}

export function registryBackupScenarios(e2e: E2E) {
  describe('registry backup drill', () => {
    it(
      'release three modules, back up, delete the streams, restore: byte-identical through the edge',
      { timeout: 240_000 },
      async () => {
        // 1. Three releases, as GitHub sends them.
        const ids: string[] = []
        for (const fixture of fixtures) {
          const delivery = await releaseDelivery(fixture, { gitHubUrl: standIns.github.url, version })
          await registerRelease(standIns.github.url, delivery.spec)
          const res = await postDelivery(e2e.edge, delivery, { headers: nearAms })
          expect(res.status).toBe(202)
          const written = releaseManifest(delivery.spec) as { id?: string; name?: string }
          ids.push((written.id ?? written.name)!)
        }
        for (const id of ids)
          await waitUntil(
            async () => {
              const r = await get(e2e, `/modules/${id}/module.json`)
              return r.status === 200
                ? (JSON.parse(Buffer.from(r.body).toString()) as { version: string }).version
                : r.status
            },
            (v) => v === version,
            60_000,
            `${id} ${version} published`
          )
        const paths = ids.flatMap((id) => [
          `/modules/${id}/module.json`,
          `/modules/${id}/${version}/module.json`,
          `/modules/${id}/${version}/module.zip`,
        ])
        const served = new Map<string, string>()
        for (const path of paths) {
          const r = await get(e2e, path)
          expect(r.status, path).toBe(200)
          served.set(path, sha256(r.body))
        }

        // 2. Backup, from the running platform.
        const backupOut = await registryCommand(e2e.localDir, 'backup')
        const file = /backup written: (\S+) /.exec(backupOut)?.[1]
        expect(file, backupOut).toBeDefined()

        // 3. The worst day: the registry's streams are gone (the operator's credential may delete them).
        const state = readState(e2e.localDir)
        const nc = await connectOperatorNats(state, e2e.localDir)
        try {
          const jsm = await jetstreamManager(nc)
          expect(await jsm.streams.delete(kvStreamName(registryBuckets.kv))).toBe(true)
          expect(await jsm.streams.delete(objStreamName(registryBuckets.zips))).toBe(true)
        } finally {
          await nc.close()
        }
        await purge(e2e, paths)
        for (const path of paths) {
          const r = await get(e2e, path)
          expect(r.status, `${path} with no registry`).not.toBe(200)
        }

        // 4. Restore, purge what the edge may have cached meanwhile, and read everything again.
        const restoreOut = await registryCommand(e2e.localDir, 'restore', file!)
        expect(restoreOut).toMatch(/restored: \d+ keys, \d+ objects \(\d+ bytes\), R3/)
        console.log(
          `registry drill: ${/backup written: .*/.exec(backupOut)?.[0]}; ${/restored: .*/.exec(restoreOut)?.[0]}`
        )
        await purge(e2e, paths)
        for (const path of paths) {
          const r = await get(e2e, path)
          expect(r.status, path).toBe(200)
          expect(r.xCache, `${path} comes from a datacenter, not the edge's cache`).toBe('MISS')
          expect(sha256(r.body), `${path} byte-identical`).toBe(served.get(path))
        }
      }
    )
  })
}
