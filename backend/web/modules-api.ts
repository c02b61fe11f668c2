/**
 * The module registry over HTTP, served by every datacenter's web service (the edge caches it):
 *   GET /modules/<id>/module.json               latest stable manifest           60 s
 *   GET /modules/<id>/beta/module.json          latest beta (or newer stable)    60 s
 *   GET /modules/<id>/<version>/module.json     one version's manifest           immutable
 *   GET /modules/<id>/<version>/module.zip      one version's zip (streamed)     immutable
 *   GET /api/modules, /api/modules/<id>         listings (deleted versions left out)   60 s
 *   GET /api/modules/<id>/releases/<version>    one release: status, notes, rejection reason   60 s
 * Strong ETags (sha256 of the bytes) and 304 on If-None-Match. Ids and versions are validated
 * before any lookup. Errors are thrown as HttpError (codes in runtime/http-errors.ts) and rendered by
 * the runtime's one error handler: JSON `{ error: { code, message } }`, never cached.
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { Router, type Request, type Response } from 'express'
import type { NatsConnection } from '@nats-io/nats-core'
import type { Channel } from '#shared/releases.ts'
import { matchesEtag } from '#shared/http/etag.ts'
import { HttpError } from '../runtime/http-errors.ts'
import type { Logger } from '../runtime/logger.ts'
import { servedVersion } from '../registry/channels.ts'
import { isModuleId, isVersion } from '../registry/names.ts'
import { RegistryReader } from '../registry/reader.ts'
import type { ModuleRecord, VersionEntry } from '../registry/records.ts'

const IMMUTABLE = 'public, max-age=31536000, immutable'
const SHORT = 'public, max-age=60, s-maxage=60'

const moduleNotFound = (id: string) => new HttpError('module_not_found', `no module "${id}"`)
const versionNotFound = (id: string, version: string) =>
  new HttpError('version_not_found', `module "${id}" has no version ${version}`)

function validId(raw: unknown): string {
  const id = String(raw)
  if (!isModuleId(id)) throw new HttpError('invalid_module_id')
  return id
}

function validVersion(raw: unknown): string {
  const version = String(raw)
  if (!isVersion(version)) throw new HttpError('invalid_version')
  return version
}

function sendBody(
  req: Request,
  res: Response,
  body: string,
  type: string,
  etag: string,
  cacheControl: string
): void {
  res.setHeader('etag', etag)
  res.setHeader('cache-control', cacheControl)
  if (matchesEtag(req.get('if-none-match'), etag)) {
    res.status(304).end()
    return
  }
  res.type(type).send(body)
}

function sendJson(req: Request, res: Response, value: unknown, cacheControl = SHORT): void {
  const body = JSON.stringify(value)
  sendBody(
    req,
    res,
    body,
    'application/json',
    `"${createHash('sha256').update(body).digest('hex')}"`,
    cacheControl
  )
}

const publicEntry = (id: string, v: VersionEntry) => ({
  version: v.version,
  channel: v.channel,
  releaseUrl: v.releaseUrl,
  manifestUrl: v.downloadUrl.replace(/module\.zip$/, 'module.json'),
  downloadUrl: v.downloadUrl,
  compatibility: v.compatibility,
  packagedAt: v.packagedAt,
  moduleId: id,
})

function listed(record: ModuleRecord) {
  const latestStable = record.versions.find((v) => v.version === record.latest.stable)
  return {
    id: record.id,
    title: record.title,
    repository: record.repository,
    latest: record.latest,
    manifestUrl: latestStable?.manifestUrl ?? null,
    updatedAt: record.updatedAt,
  }
}

/**
 * A registry read: its failure (NATS away, a timeout) is the registry being unavailable (503, retry
 * soon), the cause for the log. Failures anywhere else are bugs and answer `internal`.
 */
async function read<T>(lookup: Promise<T>): Promise<T> {
  try {
    return await lookup
  } catch (cause) {
    throw new HttpError('registry_unavailable', undefined, { cause })
  }
}

/** `mirrorRegion`: the web service's region when the registry has a read mirror there (RegistryReader). */
export function modulesApi(
  nc: NatsConnection,
  log: Logger,
  o: { mirrorRegion?: string | undefined; freshness?: { readonly stale: boolean } | undefined } = {}
): Router {
  const registry = new RegistryReader(nc, o)
  const router = Router()

  const moduleRecord = async (id: string) => {
    const record = await read(registry.getModule(id))
    if (!record) throw moduleNotFound(id)
    return record
  }

  const sendManifest = async (
    req: Request,
    res: Response,
    id: string,
    entry: VersionEntry,
    cacheControl: string
  ) => {
    const manifest = await read(registry.getManifest(id, entry.version, entry.releaseId))
    if (!manifest) throw versionNotFound(id, entry.version)
    sendBody(req, res, manifest.json, 'application/json', `"${manifest.sha256}"`, cacheControl)
  }

  const latest =
    (channel: Channel) =>
    async (req: Request, res: Response): Promise<void> => {
      const id = validId(req.params.id)
      const record = await moduleRecord(id)
      const version = servedVersion(record, channel)
      const entry = record.versions.find((v) => v.version === version)
      if (!entry) throw new HttpError('version_not_found', `module "${id}" has no ${channel} release`)
      await sendManifest(req, res, id, entry, SHORT)
    }

  /** A version's entry, deleted ones included: their files stay downloadable. */
  const versionEntry = async (id: string, version: string) => {
    const entry = (await moduleRecord(id)).versions.find((v) => v.version === version)
    if (!entry) throw versionNotFound(id, version)
    return entry
  }

  router.get('/modules/:id/module.json', latest('stable'))
  router.get('/modules/:id/beta/module.json', latest('beta'))
  router.get('/modules/:id/:version/module.json', async (req, res) => {
    const id = validId(req.params.id)
    const version = validVersion(req.params.version)
    await sendManifest(req, res, id, await versionEntry(id, version), IMMUTABLE)
  })
  router.get('/modules/:id/:version/module.zip', async (req, res) => {
    const id = validId(req.params.id)
    const version = validVersion(req.params.version)
    const entry = await versionEntry(id, version)
    const etag = `"${entry.zip.sha256}"`
    res.setHeader('etag', etag)
    res.setHeader('cache-control', IMMUTABLE)
    if (matchesEtag(req.get('if-none-match'), etag)) {
      res.status(304).end()
      return
    }
    const object = await read(registry.openZip(entry.zip.object))
    if (!object) throw versionNotFound(id, version)
    res.setHeader('content-type', 'application/zip')
    res.setHeader('content-length', String(object.info.size))
    res.setHeader(
      'content-disposition',
      `attachment; filename="${id}-${version.replace(/[^\w.+-]/g, '_')}.zip"`
    )
    if (req.method === 'HEAD') {
      await object.data.cancel().catch(() => undefined)
      res.end()
      return
    }
    void object.error.then((err) => err && log.error({ err, object: entry.zip.object }, 'zip stream failed'))
    await new Promise<void>((resolve) => {
      const stream = Readable.fromWeb(object.data)
      stream.once('error', (err) => {
        log.error({ err, object: entry.zip.object }, 'zip stream failed')
        res.destroy(err)
        resolve()
      })
      res.once('close', () => {
        stream.destroy()
        resolve()
      })
      stream.pipe(res)
    })
  })

  router.get('/api/modules', async (req, res) => {
    const modules = await read(registry.listModules())
    sendJson(req, res, { modules: modules.map(listed) })
  })
  router.get('/api/modules/:id', async (req, res) => {
    const id = validId(req.params.id)
    const record = await moduleRecord(id)
    const betaLatest = record.versions.find((v) => v.version === servedVersion(record, 'beta'))
    sendJson(req, res, {
      ...listed(record),
      betaManifestUrl: betaLatest
        ? betaLatest.manifestUrl.replace(/module\.json$/, 'beta/module.json')
        : null,
      versions: record.versions.filter((v) => v.status === 'packaged').map((v) => publicEntry(id, v)),
    })
  })
  router.get('/api/modules/:id/releases/:version', async (req, res) => {
    const id = validId(req.params.id)
    const version = validVersion(req.params.version)
    const [record, rejection] = await read(
      Promise.all([registry.getModule(id), registry.getRejection(id, version)])
    )
    const entry = record?.versions.find((v) => v.version === version)
    const rejected = rejection && {
      code: rejection.code,
      reason: rejection.reason,
      tag: rejection.tag,
      rejectedAt: rejection.rejectedAt,
    }
    if (entry) {
      const notes = await read(registry.getNotes(id, version))
      sendJson(req, res, {
        ...publicEntry(id, entry),
        status: entry.status,
        tag: entry.tag,
        deletedAt: entry.deletedAt,
        notes: notes?.notes ?? '',
        // A later attempt to publish this version again was refused; the stored one stands.
        lastRejection: rejected,
      })
      return
    }
    if (rejected) {
      sendJson(req, res, { moduleId: id, version, status: 'rejected', rejection: rejected })
      return
    }
    throw record ? versionNotFound(id, version) : moduleNotFound(id)
  })
  return router
}
