/**
 * `npm run bench`: starts the local platform (on its own state directory and a free edge port) and
 * prints every benchmark table. Not a test: it asserts nothing, it measures.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCatalogue } from '../shared/catalogue.ts'
import { projectRoot, startPlatform } from '../local/platform.ts'
import { localEnv } from '../local/local-env.ts'
import { freePort } from '../local/free-port.ts'
import { benchEdgePaths } from './edge-paths.ts'
import { benchSteering } from './steering.ts'

await benchSteering()

const catalogue = parseCatalogue(
  JSON.parse(readFileSync(join(projectRoot, 'shared', 'datacenters.json'), 'utf8')),
  'shared/datacenters.json'
)
const localDir = mkdtempSync(join(tmpdir(), 'vtta-bench-'))
const edgePort = await freePort()
const platform = await startPlatform({
  catalogue,
  localDir,
  edgePort,
  env: localEnv(process.env, `http://127.0.0.1:${edgePort}`).values,
})
try {
  await benchEdgePaths(platform)
} finally {
  await platform.stop()
  rmSync(localDir, { recursive: true, force: true })
}
