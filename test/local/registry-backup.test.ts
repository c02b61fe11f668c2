/**
 * `npm run registry:backup` / `registry:restore` (local/registry-backup/) against a real three-node
 * nats-server cluster with the production auth model, the registry R3 as the release service makes
 * it: a backup read with standard tools, a byte-identical round trip after the streams are deleted,
 * and every refusal (corrupted, truncated, hostile, wrong bucket, non-empty target) changing nothing.
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { buffer } from 'node:stream/consumers'
import { gunzipSync, gzipSync } from 'node:zlib'
import tar from 'tar-stream'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { jetstreamManager } from '@nats-io/jetstream'
import { kvStreamName, objStreamName, registryBuckets } from '#shared/releases.ts'
import { ensureRegistryStorage, openRegistryStorage } from '../../backend/registry/buckets.ts'
import { RegistryWriter } from '../../backend/registry/writer.ts'
import { RegistryReader } from '../../backend/registry/reader.ts'
import { zipObjectName } from '../../backend/registry/names.ts'
import { backupRegistry } from '../../local/registry-backup/backup.ts'
import {
  registryContents,
  restoreRegistry,
  RestoreInterruptedError,
} from '../../local/registry-backup/restore.ts'
import { formatSums, maxMemberBytes, maxMembers } from '../../local/registry-backup/format.ts'
import { withoutCredentials } from '../../local/registry-backup/connect.ts'
import { projectRoot } from '../../local/platform-specs.ts'
import { startNatsCluster, type TestNatsCluster } from '../support/nats-cluster.ts'
import { natsAuth, testNatsCredentials } from '../support/nats-credentials.ts'

let cluster: TestNatsCluster
let nc: NatsConnection
const dir = mkdtempSync(join(tmpdir(), 'vtta-backup-test-'))
const sha256 = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex')

/** Every live key's bytes and every object's bytes and metadata: what must survive a round trip. */
async function snapshot() {
  const storage = await openRegistryStorage(nc)
  if (!storage) return null
  const kv: Record<string, string> = {}
  for await (const key of await storage.kv.kv.keys()) {
    const e = await storage.kv.kv.get(key)
    if (e?.operation === 'PUT') kv[key] = Buffer.from(e.value).toString('base64')
  }
  const objects: Record<string, { sha256: string; size: number; digest: string; description?: string }> = {}
  for (const info of await storage.zips.list()) {
    const bytes = (await storage.zips.getBlob(info.name))!
    objects[info.name] = {
      sha256: sha256(bytes),
      size: bytes.length,
      digest: info.digest,
      ...(info.description ? { description: info.description } : {}),
    }
  }
  return { kv: Object.fromEntries(Object.entries(kv).sort()), objects }
}

async function deleteRegistryStreams() {
  const jsm = await jetstreamManager(nc)
  for (const stream of [kvStreamName(registryBuckets.kv), objStreamName(registryBuckets.zips)])
    await jsm.streams.delete(stream).catch(() => false)
}

async function streamsExist(): Promise<boolean> {
  return (await openRegistryStorage(nc)) !== null
}

/** A registry as the release service leaves it: enrolments, three modules with R3 zips, a deleted key. */
async function seed() {
  const writer = new RegistryWriter(await ensureRegistryStorage(nc, 3, { zipsMaxBytes: 64 * 1024 * 1024 }))
  for (const [i, id] of ['alpha', 'beta-mod', 'gamma'].entries()) {
    const version = `1.${i}.0+build`
    const releaseId = 100 + i
    // Several object-store chunks (128 KiB each) and random, so nothing compresses it away.
    const zip = randomBytes(300_000 + i * 70_000)
    const object = zipObjectName(id, version, releaseId)
    await writer.putZip(object, zip)
    const json = JSON.stringify({ id, version, title: id.toUpperCase() })
    await writer.putManifest({ moduleId: id, version, releaseId, json, sha256: sha256(json) })
    await writer.enroll({ id: 500 + i, name: `vtta/${id}` }, 'test')
    const result = await writer.commitVersion({
      moduleId: id,
      title: id.toUpperCase(),
      repository: `vtta/${id}`,
      entry: {
        version,
        channel: 'stable',
        status: 'packaged',
        repositoryId: 500 + i,
        releaseId,
        tag: `v${version}`,
        releaseUrl: `https://github.com/vtta/${id}/releases/tag/v${version}`,
        manifestUrl: `https://vtta.io/modules/${id}/module.json`,
        downloadUrl: `https://vtta.io/modules/${id}/${version}/module.zip`,
        compatibility: { minimum: '12', verified: '13', maximum: null },
        zip: { object, sha256: sha256(zip), size: zip.length },
        manifestSha256: sha256(json),
        packagedAt: new Date().toISOString(),
        deletedAt: null,
      },
    })
    expect(result.outcome).toBe('committed')
  }
  // A deleted key (a moved repository binding): not in the backup, absent after the restore.
  await writer.kv.put('repo.999', { moduleId: 'gone', boundAt: new Date().toISOString() })
  await writer.kv.delete('repo.999')
}

let good: string
let before: Awaited<ReturnType<typeof snapshot>>

interface TarMember {
  name: string
  type?: 'file' | 'symlink' | 'directory'
  body: Buffer
  linkname?: string
}

async function readMembers(file: string): Promise<TarMember[]> {
  const extract = tar.extract()
  extract.end(gunzipSync(readFileSync(file)))
  const out: TarMember[] = []
  for await (const entry of extract) out.push({ name: entry.header.name, body: await buffer(entry) })
  return out
}

/** Writes `list` as a backup file; SHA256SUMS recomputed (so only the hostile part can be refused) unless kept. */
async function writeMembers(file: string, list: TarMember[], o: { keepSums?: boolean } = {}) {
  const pack = tar.pack()
  const packed = buffer(pack)
  const content = list.filter((m) => m.name !== 'SHA256SUMS')
  const sums = o.keepSums
    ? list.find((m) => m.name === 'SHA256SUMS')!.body
    : Buffer.from(
        formatSums(content.filter((m) => (m.type ?? 'file') === 'file').map((m) => [m.name, sha256(m.body)]))
      )
  for (const m of [...content, { name: 'SHA256SUMS', body: sums }])
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve())
      if ('type' in m && m.type && m.type !== 'file')
        pack.entry({ name: m.name, type: m.type, ...(m.linkname ? { linkname: m.linkname } : {}) }, done)
      else pack.entry({ name: m.name, type: 'file' }, m.body, done)
    })
  pack.finalize()
  writeFileSync(file, gzipSync(await packed))
}

async function hostile(
  name: string,
  edit: (list: TarMember[]) => TarMember[],
  o: { keepSums?: boolean } = {}
) {
  const file = join(dir, `${name}.tar.gz`)
  await writeMembers(file, edit(await readMembers(good)), o)
  return file
}

beforeAll(async () => {
  cluster = await startNatsCluster('backup')
  nc = await connect({ servers: cluster.urls, ...natsAuth() })
  await seed()
  before = await snapshot()
  good = join(dir, 'good.tar.gz')
  await backupRegistry(nc, good, { servers: cluster.urls.join(',') })
}, 90_000)

afterAll(async () => {
  await nc?.close()
  await cluster?.dispose()
  rmSync(dir, { recursive: true, force: true })
})

describe('registry backup', () => {
  it('is a .tar.gz that tar and sha256sum check, with the registry in it', async () => {
    const exec = promisify(execFile)
    const listing = (await exec('tar', ['-tzf', good])).stdout.trim().split('\n')
    expect(listing.slice(-3)).toEqual(['objects.json', 'manifest.json', 'SHA256SUMS'])
    expect(listing).toContain('kv/module.alpha')
    expect(listing).toContain('objects/gamma/1.2.0+build/102/module.zip')
    expect(listing).not.toContain('kv/repo.999')
    const out = join(dir, 'extracted')
    await exec('mkdir', ['-p', out])
    await exec('tar', ['-xzf', good, '-C', out])
    const check = await exec('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out })
    expect(check.stdout).toContain('objects/alpha/1.0.0+build/100/module.zip: OK')
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
      counts: { kvKeys: number; objects: number }
      buckets: { kv: { stream: { num_replicas: number } } }
    }
    expect(manifest.counts.objects).toBe(3)
    expect(manifest.counts.kvKeys).toBe(Object.keys(before!.kv).length)
    expect(manifest.buckets.kv.stream.num_replicas).toBe(3)
    // Byte for byte the stored zip.
    expect(sha256(readFileSync(join(out, 'objects/beta-mod/1.1.0+build/101/module.zip')))).toBe(
      before!.objects['beta-mod/1.1.0+build/101/module.zip']!.sha256
    )
  })

  it('restores every key and zip byte-identical after the streams are deleted, R3 again', async () => {
    await deleteRegistryStreams()
    expect(await streamsExist()).toBe(false)
    const result = await restoreRegistry(nc, good)
    expect(result).toMatchObject({ kvKeys: Object.keys(before!.kv).length, objects: 3, replicas: 3 })
    expect(await snapshot()).toEqual(before)
    const jsm = await jetstreamManager(nc)
    const zips = await jsm.streams.info(objStreamName(registryBuckets.zips))
    expect(zips.config.num_replicas).toBe(3)
    expect(zips.config.max_bytes).toBe(64 * 1024 * 1024)
    expect((await jsm.streams.info(kvStreamName(registryBuckets.kv))).config.max_msgs_per_subject).toBe(1)
  })

  it('refuses a non-empty registry unless --force', async () => {
    await expect(restoreRegistry(nc, good)).rejects.toThrow(
      /the registry is not empty \(\d+ keys, 3 objects\)/
    )
    const forced = await restoreRegistry(nc, good, { force: true })
    expect(forced.objects).toBe(3)
    expect(await snapshot()).toEqual(before)
  })

  it('the commands work on NATS_URL with the operator seed file', async () => {
    const exec = promisify(execFile)
    const env = {
      ...process.env,
      NATS_URL: cluster.urls.join(','),
      NATS_NKEY_SEED_FILE: testNatsCredentials().seedFile('operator'),
    }
    const file = join(dir, 'cli.tar.gz')
    const command = join(projectRoot, 'local', 'registry-backup', 'command.ts')
    const backup = await exec(process.execPath, [command, 'backup', '--out', file], { env })
    // --check reads the file only: no NATS needed.
    const check = await exec(process.execPath, [command, 'restore', '--check', file], {
      env: { ...process.env, NATS_URL: 'nats://127.0.0.1:1' },
    })
    expect(check.stdout).toMatch(/^verified: \d+ keys, 3 objects \(\d+ bytes\), made \S+Z from /)
    expect(backup.stdout).toMatch(
      /backup written: .*cli\.tar\.gz \(\d+ bytes; \d+ keys, 3 objects, \d+ zip bytes\)/
    )
    await deleteRegistryStreams()
    const restore = await exec(process.execPath, [command, 'restore', file], { env })
    expect(restore.stdout).toMatch(/restored: \d+ keys, 3 objects \(\d+ bytes\), R3/)
    expect(await snapshot()).toEqual(before)
    const refused = await exec(process.execPath, [command, 'restore', file], { env }).catch(
      (err: { code: number; stderr: string }) => err
    )
    if (!('code' in refused)) throw new Error('a restore into a non-empty registry succeeded')
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^registry: the registry is not empty/)
  })
})

describe('the source recorded in manifest.json', () => {
  it('never holds credentials NATS_URL carries', () => {
    expect(withoutCredentials('nats://operator:s3cret@10.0.0.1:4222, tls://token@nats.example:4443')).toBe(
      'nats://10.0.0.1:4222,tls://nats.example:4443'
    )
    expect(withoutCredentials('user:pass@10.0.0.2:4222')).toBe('10.0.0.2:4222')
    expect(withoutCredentials('nats://127.0.0.1:4222')).toBe('nats://127.0.0.1:4222')
    expect(withoutCredentials('nats://a:b@[::1')).toBe('(unparsable URL)')
  })
})

describe('a bad backup file changes nothing', () => {
  beforeAll(deleteRegistryStreams)

  /** Refused with `message`, and the cluster still has no registry at all. */
  async function refused(file: string, message: RegExp) {
    await expect(restoreRegistry(nc, file)).rejects.toThrow(message)
    expect(await streamsExist()).toBe(false)
  }

  it('a corrupted byte (gzip check)', async () => {
    const file = join(dir, 'flipped.tar.gz')
    const bytes = readFileSync(good)
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff
    writeFileSync(file, bytes)
    await refused(file, /flipped\.tar\.gz: (not a complete gzip file|unreadable)/)
  })

  it('a member that does not match SHA256SUMS', async () => {
    const file = await hostile(
      'tampered',
      (list) => list.map((m) => (m.name === 'kv/module.alpha' ? { ...m, body: Buffer.from('{}') } : m)),
      { keepSums: true }
    )
    await refused(file, /kv\/module\.alpha does not match its SHA-256/)
  })

  it('a truncated file', async () => {
    const file = join(dir, 'truncated.tar.gz')
    writeFileSync(file, readFileSync(good))
    truncateSync(file, Math.floor(statSync(file).size * 0.6))
    await refused(file, /truncated\.tar\.gz: not a complete gzip file/)
  })

  it('a member path with ..', async () => {
    const file = await hostile('dotdot', (list) => [
      { name: 'kv/../../etc/passwd', body: Buffer.from('x') },
      ...list,
    ])
    await refused(file, /unexpected or unsafe member name "kv\/..\/..\/etc\/passwd"/)
  })

  it('a symbolic link', async () => {
    const file = await hostile('symlink', (list) => [
      { name: 'kv/link', type: 'symlink', linkname: '/etc/passwd', body: Buffer.alloc(0) },
      ...list,
    ])
    await refused(file, /member "kv\/link" is a symlink, not a file/)
  })

  it('a duplicate member', async () => {
    const file = await hostile('duplicate', (list) => [list[0]!, ...list])
    await refused(file, /member kv\/\S+ appears twice/)
  })

  it('an oversized member', async () => {
    const file = await hostile('oversized', (list) => [
      { name: 'kv/huge', body: Buffer.alloc(maxMemberBytes.kv + 1) },
      ...list,
    ])
    await refused(file, /member kv\/huge is 1048577 bytes, over the 1048576 allowed/)
  })

  it('a backup of another bucket', async () => {
    const file = await hostile('wrong-bucket', (list) =>
      list.map((m) =>
        m.name === 'manifest.json'
          ? { ...m, body: Buffer.from(m.body.toString().replace('"name": "registry"', '"name": "other"')) }
          : m
      )
    )
    await refused(file, /manifest\.json is not a registry backup's: .*buckets\.kv\.name/s)
  })

  it('an object missing from the index', async () => {
    const file = await hostile('unindexed', (list) => [
      { name: 'objects/extra/1.0.0/1/module.zip', body: Buffer.from('zip') },
      ...list,
    ])
    await refused(file, /objects\/extra\/1\.0\.0\/1\/module\.zip is not in objects\.json/)
  })

  /** objects.json with `edit` applied to every object (SHA256SUMS recomputed, so only the edit is wrong). */
  const editIndex = (name: string, edit: (o: Record<string, unknown>) => Record<string, unknown>) =>
    hostile(name, (list) =>
      list.map((m) =>
        m.name === 'objects.json'
          ? {
              ...m,
              body: Buffer.from(
                JSON.stringify((JSON.parse(m.body.toString()) as Array<Record<string, unknown>>).map(edit))
              ),
            }
          : m
      )
    )

  it("an object's digest that is not its SHA-256", async () => {
    const file = await editIndex('digest', (o) => ({ ...o, digest: 'SHA-256=x' }))
    await refused(
      file,
      /object alpha\/1\.0\.0\+build\/100\/module\.zip's digest SHA-256=x is not its SHA-256/
    )
  })

  it('an object header NATS cannot carry', async () => {
    const file = await editIndex('header', (o) => ({ ...o, headers: { 'Bad: Name': ['x'] } }))
    await refused(file, /object \S+ has a header "Bad: Name" NATS cannot carry/)
    const value = await editIndex('header-value', (o) => ({ ...o, headers: { Ok: ['x\r\nInjected: y'] } }))
    await refused(value, /has a header "Ok" NATS cannot carry/)
  })

  it('an object stored under a member not named after it', async () => {
    const file = await hostile('member', (list) =>
      list.map((m) => {
        if (m.name === 'objects/gamma/1.2.0+build/102/module.zip')
          return { ...m, name: 'objects/elsewhere.zip' }
        if (m.name !== 'objects.json') return m
        const index = (JSON.parse(m.body.toString()) as Array<{ member: string }>).map((o) =>
          o.member === 'objects/gamma/1.2.0+build/102/module.zip'
            ? { ...o, member: 'objects/elsewhere.zip' }
            : o
        )
        return { ...m, body: Buffer.from(JSON.stringify(index)) }
      })
    )
    await refused(file, /object gamma\/1\.2\.0\+build\/102\/module\.zip is stored as objects\/elsewhere\.zip/)
  })

  it('still restores the good file afterwards (the refusals left the cluster empty)', async () => {
    expect(await registryContents(nc)).toEqual({ kvKeys: 0, objects: 0 })
    await restoreRegistry(nc, good)
    expect(await snapshot()).toEqual(before)
  })
})

/** A release run's writes, in the release service's order: zip, manifest, binding, module commit. */
async function release(
  writer: RegistryWriter,
  id: string,
  version: string,
  releaseId: number,
  repositoryId: number
) {
  const zip = randomBytes(1000)
  const object = zipObjectName(id, version, releaseId)
  await writer.putZip(object, zip)
  const json = JSON.stringify({ id, version })
  await writer.putManifest({ moduleId: id, version, releaseId, json, sha256: sha256(json) })
  expect(await writer.bindRepository(repositoryId, id)).toEqual({ ok: true })
  const result = await writer.commitVersion({
    moduleId: id,
    title: id,
    repository: `vtta/${id}`,
    entry: {
      version,
      channel: 'stable',
      status: 'packaged',
      repositoryId,
      releaseId,
      tag: `v${version}`,
      releaseUrl: `https://github.com/vtta/${id}/releases/tag/v${version}`,
      manifestUrl: `https://vtta.io/modules/${id}/module.json`,
      downloadUrl: `https://vtta.io/modules/${id}/${version}/module.zip`,
      compatibility: { minimum: '12', verified: '13', maximum: null },
      zip: { object, sha256: sha256(zip), size: zip.length },
      manifestSha256: sha256(json),
      packagedAt: new Date().toISOString(),
      deletedAt: null,
    },
  })
  expect(result.outcome).toBe('committed')
}

describe('releases packaged while the backup runs', () => {
  it('the restored registry serves every version its module records list', async () => {
    // The previous block left the good backup restored. A release service on its own connection
    // packages a version of an existing module and a new module's first release after each listing.
    const other = await connect({ servers: cluster.urls, ...natsAuth() })
    const file = join(dir, 'racing.tar.gz')
    let n = 0
    try {
      const writer = new RegistryWriter((await openRegistryStorage(other))!)
      await backupRegistry(nc, file, {
        servers: '',
        afterListing: async () => {
          n++
          await release(writer, 'alpha', `2.${n}.0`, 700 + n, 500)
          await release(writer, `new-${n}`, '1.0.0', 800 + n, 900 + n)
        },
      })
    } finally {
      await other.close()
    }
    expect(n).toBe(3)
    await deleteRegistryStreams()
    await restoreRegistry(nc, file)
    const reader = new RegistryReader(nc)
    const modules = await reader.listModules()
    const alpha = modules.find((m) => m.id === 'alpha')!
    // Committed before the module records were read: in the backup.
    expect(alpha.versions.map((v) => v.version)).toEqual(expect.arrayContaining(['2.1.0', '2.2.0']))
    expect(modules.map((m) => m.id)).toEqual(expect.arrayContaining(['new-1', 'new-2']))
    const storage = (await openRegistryStorage(nc))!
    for (const m of modules) {
      for (const v of m.versions) {
        expect(await reader.getManifest(m.id, v.version, v.releaseId), `${m.id} ${v.version}`).not.toBeNull()
        const zip = await storage.zips.getBlob(v.zip.object)
        expect(zip && sha256(zip), `${m.id} ${v.version} zip`).toBe(v.zip.sha256)
      }
      if (m.id.startsWith('new-'))
        expect(await new RegistryWriter(storage).repositoryModule(m.repositoryId)).toBe(m.id)
    }
  })
})

describe('the file changing while it is restored', () => {
  beforeEach(deleteRegistryStreams)

  /** A copy of the good backup, and one whose module.alpha differs (with matching SHA256SUMS). */
  async function copies(name: string) {
    const file = join(dir, `${name}.tar.gz`)
    copyFileSync(good, file)
    const other = await hostile(`${name}-other`, (list) =>
      list.map((m) => (m.name === 'kv/module.alpha' ? { ...m, body: Buffer.from('{}') } : m))
    )
    return { file, other }
  }

  it('a file renamed over the path after verification is never read', async () => {
    const { file, other } = await copies('renamed')
    await restoreRegistry(nc, file, {
      log: (line) => {
        if (line.includes('verified')) renameSync(other, file)
      },
    })
    expect(await snapshot()).toEqual(before)
  })

  it('bytes changed in place are never written, and the error says how to finish', async () => {
    const { file, other } = await copies('in-place')
    const error = await restoreRegistry(nc, file, {
      // After the zips are written, before the KV pass reads the file again.
      log: (line) => {
        if (line.startsWith('objects:')) writeFileSync(file, readFileSync(other))
      },
    }).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(RestoreInterruptedError)
    expect((error as Error).message).toMatch(
      /^restore stopped while writing the KV entries: .*kv\/module\.alpha changed since it was verified\. The cluster is left partly restored: 3 of 3 zips are written and no KV entry.*--force/
    )
    const storage = (await openRegistryStorage(nc))!
    expect(await storage.kv.kv.get('module.alpha')).toBeNull()
    expect((await storage.zips.list()).length).toBe(3)
  })
})

describe('bounds a restore keeps to', () => {
  beforeEach(deleteRegistryStreams)

  it('refuses more members than the format allows, before writing', async () => {
    // Only the count is wrong: the reader stops at the member past the bound, before SHA256SUMS.
    const file = join(dir, 'many.tar.gz')
    const pack = tar.pack()
    const packed = buffer(pack)
    for (let i = 0; i <= maxMembers; i++) pack.entry({ name: `kv/k${i}` }, 'x')
    pack.finalize()
    writeFileSync(file, gzipSync(await packed))
    await expect(restoreRegistry(nc, file)).rejects.toThrow(`many.tar.gz: more than ${maxMembers} members`)
    expect(await streamsExist()).toBe(false)
    // Packing and reading 50 001 tar headers takes seconds, many more on a loaded machine.
  }, 120_000)

  it("takes the zips' bound from REGISTRY_ZIPS_MAX_BYTES, never a larger one from the file", async () => {
    const file = await hostile('huge-bound', (list) =>
      list.map((m) => {
        if (m.name !== 'manifest.json') return m
        const manifest = JSON.parse(m.body.toString()) as {
          buckets: { zips: { stream: { max_bytes: number } } }
        }
        manifest.buckets.zips.stream.max_bytes = 2 ** 50
        return { ...m, body: Buffer.from(JSON.stringify(manifest)) }
      })
    )
    await restoreRegistry(nc, file, { zipsMaxBytes: 32 * 1024 * 1024 })
    const jsm = await jetstreamManager(nc)
    expect((await jsm.streams.info(objStreamName(registryBuckets.zips))).config.max_bytes).toBe(
      32 * 1024 * 1024
    )
    expect(await snapshot()).toEqual(before)
  })

  it('refuses a backup whose zips exceed the bound, before writing', async () => {
    await expect(restoreRegistry(nc, good, { zipsMaxBytes: 1000 })).rejects.toThrow(
      /the backup's zips take \d+ bytes, over the object store's bound of 1000 \(REGISTRY_ZIPS_MAX_BYTES\)/
    )
    expect(await streamsExist()).toBe(false)
  })
})
