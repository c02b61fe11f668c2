/**
 * `npm run registry:backup [-- --out <file>]` and `npm run registry:restore -- <file> [--force] [--replicas N]`.
 * Backup writes the module registry (KV + zips) to one .tar.gz with SHA256SUMS (default
 * `<LOCAL_DIR>/backups/registry-<UTC time>.tar.gz`); restore verifies the whole file, then rebuilds the
 * registry (refusing a non-empty one unless --force); `restore -- --check <file>` only verifies the
 * file (no NATS), e.g. right after copying it off the swarm. The zips' store bound on restore is
 * `REGISTRY_ZIPS_MAX_BYTES` (default the release service's), or the backup's own when lower. Both
 * act as the operator's NATS user: on the running `npm start` platform by default, or `NATS_URL` +
 * `NATS_NKEY_SEED_FILE` (production, see docs/operations.md "Backups"). Exit code 1 with one line
 * on stderr when anything is refused.
 */
import { mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { projectRoot } from '../platform-specs.ts'
import { errorMessage } from '#shared/error-message.ts'
import { connectForBackup } from './connect.ts'
import { backupRegistry } from './backup.ts'
import { restoreRegistry } from './restore.ts'
import { verifyBackup } from './verify.ts'

const usage =
  'usage: npm run registry:backup [-- --out <file>] | npm run registry:restore -- [--check | --force] [--replicas N] <file>'

function fail(message: string): never {
  console.error(`registry: ${message}`)
  process.exit(1)
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        force: { type: 'boolean', default: false },
        check: { type: 'boolean', default: false },
        replicas: { type: 'string' },
      },
    })
  } catch (error) {
    return fail(`${errorMessage(error)}\n${usage}`)
  }
})()
const [command, file] = positionals
if (command !== 'backup' && command !== 'restore') fail(usage)
if (command === 'restore' && !file) fail(usage)
const replicas = values.replicas === undefined ? undefined : Number(values.replicas)
if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5))
  fail('--replicas must be 1 to 5')

const zipsMaxBytes =
  process.env.REGISTRY_ZIPS_MAX_BYTES === undefined ? undefined : Number(process.env.REGISTRY_ZIPS_MAX_BYTES)
if (zipsMaxBytes !== undefined && !(Number.isSafeInteger(zipsMaxBytes) && zipsMaxBytes > 0))
  fail('REGISTRY_ZIPS_MAX_BYTES must be a positive number of bytes')

if (command === 'restore' && values.check) {
  try {
    const { manifest } = await verifyBackup(resolve(file!))
    const c = manifest.counts
    console.log(
      `verified: ${c.kvKeys} keys, ${c.objects} objects (${c.objectBytes} bytes), made ${manifest.createdAt} from ${manifest.source.serverName || manifest.source.servers}`
    )
  } catch (error) {
    fail(errorMessage(error))
  }
  process.exit(0)
}

const { nc, servers } = await connectForBackup().catch((error: unknown) => fail(errorMessage(error)))
try {
  if (command === 'backup') {
    const localDir = resolve(process.env.LOCAL_DIR ?? join(projectRoot, '.local'))
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')
    const out = resolve(values.out ?? join(localDir, 'backups', `registry-${stamp}.tar.gz`))
    mkdirSync(dirname(out), { recursive: true })
    const result = await backupRegistry(nc, out, { servers, log: (line) => console.log(line) })
    const c = result.manifest.counts
    console.log(
      `backup written: ${result.file} (${result.bytes} bytes; ${c.kvKeys} keys, ${c.objects} objects, ${c.objectBytes} zip bytes)`
    )
  } else {
    const result = await restoreRegistry(nc, resolve(file!), {
      force: values.force,
      ...(replicas !== undefined ? { replicas } : {}),
      ...(zipsMaxBytes !== undefined ? { zipsMaxBytes } : {}),
      log: (line) => console.log(line),
    })
    console.log(
      `restored: ${result.kvKeys} keys, ${result.objects} objects (${result.objectBytes} bytes), R${result.replicas}`
    )
  }
} catch (error) {
  await nc.close()
  fail(errorMessage(error))
}
await nc.close()
