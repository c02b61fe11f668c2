/**
 * A local image origin on 127.0.0.1 (free port) for the image service's tests and benchmark, on the
 * stand-ins' HTTP server (local/stand-ins/http.ts). It counts every request, so a test can assert
 * "fetched once", and has routes for the hostile cases (any method):
 *
 *   /files/<name>             the file added under that name (query ignored), with its Content-Type
 *   /slow/<ms>/files/<name>   the same file after a delay
 *   /redirect?to=<url>        302 to any URL
 *   /chain/<n>/<path>         n redirects, then /<path>
 *   /status/<code>            an empty answer with that status
 *   /trickle                  a JPEG start, then one byte a second, forever
 *   /big[?declare=1]          a 40 MB "PNG" (signature, then zeros), streamed; with Content-Length if declared
 */
import type { ServerResponse } from 'node:http'
import { Router, serveHttp } from '../../local/stand-ins/http.ts'

export interface OriginFile {
  body: Buffer
  contentType: string
}

export interface StreamRecord {
  bytesWritten: number
  /** The client hung up before the whole body was sent. */
  closedEarly: boolean
  /** Resolves when the response has ended or been cut. */
  done: Promise<void>
}

export interface OriginServer {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** `127.0.0.1:<port>`: the explicit-origin entry for IMAGE_SOURCE_HOSTS. */
  origin: string
  port: number
  add(name: string, file: OriginFile): string
  /** The URL of an added file. */
  fileUrl(name: string, query?: string): string
  /** How many requests reached this path (query ignored); all paths when omitted. */
  hits(path?: string): number
  /** TCP connections accepted so far. */
  connections(): number
  /** The last /big and /trickle responses. */
  streams: { big?: StreamRecord; trickle?: StreamRecord }
  close(): Promise<void>
}

export const BIG_BYTES = 40 * 1024 * 1024

export async function startOriginServer(
  files: Record<string, OriginFile> = {},
  opts: { port?: number; host?: string } = {}
): Promise<OriginServer> {
  const store = new Map(Object.entries(files))
  const hits = new Map<string, number>()
  let total = 0
  let connections = 0
  const streams: OriginServer['streams'] = {}

  const serveFile = (res: ServerResponse, name: string) => {
    const file = store.get(name)
    if (!file) return void res.writeHead(404).end()
    res.writeHead(200, {
      'content-type': file.contentType,
      'content-length': file.body.length,
      'cache-control': 'public, max-age=3600',
    })
    res.end(file.body)
  }

  /** Records how much of a streamed body went out, and whether the client hung up first. */
  const track = (res: ServerResponse): StreamRecord => {
    let finish!: () => void
    const record: StreamRecord = {
      bytesWritten: 0,
      closedEarly: false,
      done: new Promise((resolve) => (finish = resolve)),
    }
    res.once('close', () => {
      record.closedEarly = !res.writableFinished
      finish()
    })
    return record
  }

  const router = new Router(() => ({}))
  router.use(({ url }, next) => {
    total++
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1)
    return next()
  })
  router.all('/files/:name(.+)', ({ res, params }) => serveFile(res, decodeURIComponent(params.name!)))
  router.all('/slow/:ms(\\d+)/files/:name(.+)', ({ res, params }) => {
    const name = decodeURIComponent(params.name!)
    setTimeout(() => serveFile(res, name), Number(params.ms))
  })
  router.all('/redirect', ({ res, url }) => {
    res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end()
  })
  router.all('/chain/:n(\\d+)/:rest(.+)', ({ res, params }) => {
    const n = Number(params.n)
    res.writeHead(302, { location: n > 1 ? `/chain/${n - 1}/${params.rest}` : `/${params.rest}` }).end()
  })
  router.all('/status/:code(\\d{3})', ({ res, params }) => void res.writeHead(Number(params.code)).end())
  router.all('/trickle', ({ res }) => {
    res.writeHead(200, { 'content-type': 'image/jpeg' })
    const jpegStart = [0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]
    const record = (streams.trickle = track(res))
    const timer = setInterval(() => {
      res.write(Buffer.from([jpegStart[record.bytesWritten % jpegStart.length]!]))
      record.bytesWritten++
    }, 1000)
    res.once('close', () => clearInterval(timer))
  })
  router.all('/big', ({ res, url }) => {
    const headers: Record<string, string | number> = { 'content-type': 'image/png' }
    if (url.searchParams.has('declare')) headers['content-length'] = BIG_BYTES
    res.writeHead(200, headers)
    const zeros = Buffer.alloc(64 * 1024)
    const first = Buffer.alloc(64 * 1024)
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(first)
    const record = (streams.big = track(res))
    const pump = () => {
      while (record.bytesWritten < BIG_BYTES) {
        const chunk = record.bytesWritten === 0 ? first : zeros
        record.bytesWritten += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      res.end()
    }
    pump()
  })

  const http = await serveHttp(
    (req, res) => router.handle(req, res, ({ res }) => void res.writeHead(404).end()),
    opts
  )
  http.server.on('connection', () => connections++)
  const { url, port } = http

  return {
    url,
    origin: `${http.host}:${port}`,
    port,
    add(name, file) {
      store.set(name, file)
      return `${url}/files/${encodeURIComponent(name)}`
    },
    fileUrl: (name, query) => `${url}/files/${encodeURIComponent(name)}${query ? `?${query}` : ''}`,
    hits: (path) => (path === undefined ? total : (hits.get(path) ?? 0)),
    connections: () => connections,
    streams,
    close: () => http.close(),
  }
}
