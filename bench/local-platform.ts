/**
 * The local platform for a benchmark part: started on a state directory of its own and a free edge
 * port, so a running `npm start` is not disturbed (its addresses are: stop it first), with a free
 * origin port in IMAGE_SOURCE_HOSTS for the part's image origin. The directory is gone afterwards,
 * also when the platform did not start (its addresses taken, say).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCatalogue } from '#shared/catalogue.ts'
import { projectRoot, startPlatform, type Platform } from '../local/platform.ts'
import { loadEdgeSecrets } from '../local/edge-secrets.ts'
import { localEnv } from '../local/env.ts'
import { freePort } from '../local/free-port.ts'

export interface LocalPlatformOptions {
  /** The catalogue, a file of shared/ (default datacenters.json). */
  catalogueFile?: string
  /** The emulated WAN (local/wan/), as `WAN=1 npm start` runs it. */
  wan?: boolean
  /** The edge's settings (edgeTunables); default none, the edge's own defaults. */
  tunables?: NodeJS.ProcessEnv
}

/** Runs `work` on a platform of its own; `localDir` is its state directory (state.json, secrets). */
export async function onLocalPlatform(
  work: (platform: Platform, originPort: number, localDir: string) => Promise<void>,
  options: LocalPlatformOptions = {}
): Promise<void> {
  const file = options.catalogueFile ?? 'datacenters.json'
  const catalogue = parseCatalogue(
    JSON.parse(readFileSync(join(projectRoot, 'shared', file), 'utf8')),
    `shared/${file}`
  )
  const localDir = mkdtempSync(join(tmpdir(), 'vtta-bench-'))
  try {
    const edgePort = await freePort()
    const originPort = await freePort()
    const defaults = localEnv({}, '').values
    const platform = await startPlatform({
      catalogue,
      localDir,
      edgePort,
      env: localEnv(
        { ...process.env, IMAGE_SOURCE_HOSTS: `${defaults.IMAGE_SOURCE_HOSTS},127.0.0.1:${originPort}` },
        `http://127.0.0.1:${edgePort}`,
        loadEdgeSecrets(localDir).secrets
      ).values,
      // The edge reaches each datacenter through the relay only when told WAN=1 (edgeSpec).
      tunables: { ...options.tunables, ...(options.wan ? { WAN: '1' } : {}) },
      wan: options.wan ?? false,
    })
    try {
      await work(platform, originPort, localDir)
    } finally {
      await platform.stop()
    }
  } finally {
    rmSync(localDir, { recursive: true, force: true })
  }
}
