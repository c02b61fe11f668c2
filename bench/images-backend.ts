/**
 * Image backend benchmark: a 12 MP photo-like JPEG (4000x3000) from a local origin, resized to 800 px
 * WebP (quality 80 everywhere), side by side in interleaved rounds at concurrency 1 and 4:
 *   (a) a bare Node http server: fetch + sharp resize + WebP, the physical baseline
 *   (b) unjs/ipx 3.1.1 (createIPX + ipxHttpStorage + createIPXNodeServer, on our sharp)
 *   (c) our image service over NATS (request -> reassembled bytes), origin cache off: every request
 *       fetches the source, like (a) and (b)
 *   (c') the same with the origin cache on (one source, many sizes: the fetch is skipped)
 * CPU per image is the serving process's own (utime + stime from /proc/<pid>/stat, all threads).
 * Then: AVIF vs WebP cost for the same transform (goal <= 3x), and the image service's peak RSS
 * (VmHWM) under 16 concurrent 24 MP transforms (goal <= 512 MB).
 *
 * CPU per image is each process's CPU beyond its idle use, measured before the rounds (load.ts).
 *
 * Every server is a child process; the origin and the load generator run in this process.
 *   node bench/images-backend.ts             runs the benchmark alone
 *   benchImagesBackend({ originPort, extraTargets })   from bench/run.ts: the caller may start the
 *   local platform with IMAGE_SOURCE_HOSTS naming 127.0.0.1:<originPort> and add the edge's targets.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'
import { connect } from '@nats-io/transport-node'
import type { NatsConnection } from '@nats-io/nats-core'
import { startProcess, stopProcess, type Supervised } from '../local/processes.ts'
import { freePort } from '../local/free-port.ts'
import { waitForHttp } from '../local/wait.ts'
import { startNatsServer, type TestNatsServer } from '../test/support/nats-server.ts'
import { startService, type TestService } from '../test/support/backend-service.ts'
import { startOriginServer, type OriginServer } from '../test/support/origin-server.ts'
import { photoLikeJpeg } from '../test/support/image-fixtures.ts'
import { requestTransform } from '../test/backend/images/transform-client.ts'
import type { ResolvedImageOptions } from '#shared/images.ts'
import { idleCpu, interleaved, targetUrl, type CallTarget, type Measured, type Target } from './load.ts'
import { printTable } from './table.ts'
import { natsAuth } from '../test/support/nats-credentials.ts'

/** A target and the processes whose CPU time is its cost. */
export type BenchTarget = (Target | CallTarget) & { pids: number[] }

export interface ImagesBenchOptions {
  /** Port for the origin on 127.0.0.1 (so a platform started before can allowlist it); default free. */
  originPort?: number
  rounds?: number
  roundMs?: number
  concurrencies?: number[]
  /** How long each process's idle CPU use is measured before the rounds. */
  idleMs?: number
  /** Bursts of 16 concurrent 24 MP transforms for the peak memory. */
  memoryBursts?: number
  /** More targets for the same interleaved rounds (the edge's miss and hit paths). */
  extraTargets?: (ctx: { sourceUrl: string; width: number; quality: number }) => BenchTarget[]
}

/** The targets' names, by which the ratios find them. */
export const backendTargetNames = {
  a: 'a: bare node + sharp',
  b: 'b: ipx 3.1.1',
  c: 'c: images over NATS',
  cc: "c': same, origin cache on",
} as const

const WIDTH = 800
const QUALITY = 80
function memoryMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1])
  return kb / 1024
}

/** The shared interleaved rounds, each target charged its processes' CPU; a longer warm-up for sharp. */
const measure = (
  targets: BenchTarget[],
  opts: { concurrency: number; rounds: number; roundMs: number; idle?: Map<number, number> }
) => interleaved(targets, { ...opts, warmupMs: 500 })

function natsTarget(
  name: string,
  nc: NatsConnection,
  dc: string,
  source: string,
  options: Partial<ResolvedImageOptions>,
  pids: number[]
): BenchTarget {
  return {
    name,
    pids,
    send: async () =>
      (await requestTransform(nc, { source, options }, { dc, timeoutMs: 60_000 })).status === 200,
  }
}

async function startPeer(
  role: 'baseline' | 'ipx',
  dir: string,
  originHost: string
): Promise<{ url: string; proc: Supervised }> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const proc = startProcess({
    dc: null,
    service: `bench-${role}`,
    url,
    command: process.execPath,
    args: [import.meta.filename, role, String(port), originHost],
    env: { PATH: process.env.PATH ?? '' },
    logFile: join(dir, `${role}.log`),
  })
  await waitForHttp(`${url}/health`, { timeoutMs: 15_000, what: role, abort: proc.exited })
  return { url, proc }
}

/** Each concurrency's measurements by target name, for callers that print ratios of their own targets. */
export type ImagesBenchResults = Array<{ concurrency: number; results: Map<string, Measured> }>

export async function benchImagesBackend(options: ImagesBenchOptions = {}): Promise<ImagesBenchResults> {
  const all: ImagesBenchResults = []
  const rounds = options.rounds ?? 3
  const roundMs = options.roundMs ?? 3_000
  const dir = mkdtempSync(join(tmpdir(), 'vtta-bench-images-'))
  const stops: Array<() => Promise<unknown>> = []
  try {
    const photo = await photoLikeJpeg(4000, 3000)
    const origin: OriginServer = await startOriginServer(
      { 'photo.jpg': { body: photo, contentType: 'image/jpeg' } },
      { port: options.originPort }
    )
    stops.push(() => origin.close())
    const sourceUrl = origin.fileUrl('photo.jpg')
    console.log(
      `\nimages backend: source ${sourceUrl} (${photo.length} bytes, 4000x3000 JPEG) -> ${WIDTH} px WebP q${QUALITY}`
    )

    const nats: TestNatsServer = await startNatsServer('bench-images')
    stops.push(() => nats.dispose())
    const env = { NATS_URL: nats.url, IMAGE_SOURCE_HOSTS: origin.origin, LOG_LEVEL: 'warn' }
    const uncached: TestService = await startService('images', {
      ...env,
      DC: 'fra',
      IMAGE_ORIGIN_CACHE_BYTES: '0',
    })
    stops.push(() => uncached.stop())
    const cached: TestService = await startService('images', { ...env, DC: 'ams' })
    stops.push(() => cached.stop())
    const baseline = await startPeer('baseline', dir, origin.origin)
    stops.push(() => stopProcess(baseline.proc))
    const ipx = await startPeer('ipx', dir, origin.origin)
    stops.push(() => stopProcess(ipx.proc))
    const nc = await connect({ servers: nats.url, ...natsAuth() })
    stops.push(() => nc.close())

    const webp = { width: WIDTH, format: 'webp', quality: QUALITY } as const
    const names = backendTargetNames
    const targets: BenchTarget[] = [
      {
        name: names.a,
        url: `${baseline.url}/?url=${encodeURIComponent(sourceUrl)}&w=${WIDTH}&q=${QUALITY}`,
        pids: [baseline.proc.pid],
      },
      {
        name: names.b,
        url: `${ipx.url}/w_${WIDTH},f_webp,q_${QUALITY}/${sourceUrl}`,
        pids: [ipx.proc.pid],
      },
      natsTarget(names.c, nc, 'fra', sourceUrl, webp, [uncached.proc.pid]),
      natsTarget(names.cc, nc, 'ams', sourceUrl, webp, [cached.proc.pid]),
      ...(options.extraTargets?.({ sourceUrl, width: WIDTH, quality: QUALITY }) ?? []),
    ]
    const sizes = await outputSizes(targets)
    for (const [name, dc] of [
      [names.c, 'fra'],
      [names.cc, 'ams'],
    ] as const)
      sizes.set(name, (await requestTransform(nc, { source: sourceUrl, options: webp }, { dc })).body.length)
    const idle = await idleCpu([...new Set(targets.flatMap((t) => t.pids))], options.idleMs ?? 10_000)
    for (const concurrency of options.concurrencies ?? [1, 4]) {
      const results = await measure(targets, { concurrency, rounds, roundMs, idle })
      all.push({ concurrency, results })
      const r = (name: string) => results.get(name)!
      printTable(
        `images backend, concurrency ${concurrency} (median of ${rounds} interleaved rounds of ${roundMs / 1000} s)`,
        ['target', 'rps', 'p50 ms', 'p99 ms', 'CPU ms/img', 'bytes', 'requests', 'errors'],
        targets.map((t) => {
          const x = results.get(t.name)!
          return [
            t.name,
            x.rps,
            x.p50,
            x.p99,
            x.cpuPerRequest,
            sizes.get(t.name) ?? '-',
            x.requests,
            x.errors,
          ]
        })
      )
      const [a, b, c, cc] = [r(names.a), r(names.b), r(names.c), r(names.cc)]
      printTable(
        `ratios, concurrency ${concurrency}`,
        ['ratio', 'throughput', 'CPU/img', 'p99'],
        [
          ['b/a (ipx vs bare sharp)', b.rps / a.rps, b.cpuPerRequest / a.cpuPerRequest, b.p99 / a.p99],
          [
            'c/a (images vs bare sharp; goal >= 0.90)',
            c.rps / a.rps,
            c.cpuPerRequest / a.cpuPerRequest,
            c.p99 / a.p99,
          ],
          [
            'c/b (images vs ipx; goal >= 1.0)',
            c.rps / b.rps,
            c.cpuPerRequest / b.cpuPerRequest,
            c.p99 / b.p99,
          ],
          [
            "c'/a (origin cache on vs bare sharp)",
            cc.rps / a.rps,
            cc.cpuPerRequest / a.cpuPerRequest,
            cc.p99 / a.p99,
          ],
        ]
      )
    }

    await benchAvifVsWebp(nc, sourceUrl, cached, { rounds, roundMs })
    await benchPeakMemory(nc, origin, env, options.memoryBursts ?? 3)
    return all
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One request per target, to show that they produce comparable bytes. */
async function outputSizes(targets: BenchTarget[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>()
  for (const t of targets) {
    if ('send' in t) continue
    const res = await fetch(targetUrl(t), { headers: t.headers })
    sizes.set(t.name, (await res.arrayBuffer()).byteLength)
  }
  return sizes
}

/** The same transform encoded as AVIF and as WebP by the service (origin cache on: encode cost only). */
async function benchAvifVsWebp(
  nc: NatsConnection,
  sourceUrl: string,
  service: TestService,
  opts: { rounds: number; roundMs: number }
): Promise<void> {
  const formats = ['webp', 'avif'] as const
  const bytes = new Map<string, number>()
  for (const format of formats) {
    const answer = await requestTransform(
      nc,
      { source: sourceUrl, options: { width: WIDTH, format } },
      { dc: 'ams' }
    )
    bytes.set(format, answer.body.length)
  }
  const targets = formats.map((format) =>
    natsTarget(format, nc, 'ams', sourceUrl, { width: WIDTH, format }, [service.proc.pid])
  )
  const results = await measure(targets, { concurrency: 1, rounds: opts.rounds, roundMs: opts.roundMs })
  const [webp, avif] = [results.get('webp')!, results.get('avif')!]
  printTable(
    `AVIF vs WebP, ${WIDTH} px from the 12 MP photo, default quality and effort, concurrency 1`,
    ['format', 'rps', 'p50 ms', 'CPU ms/img', 'bytes'],
    [
      ['webp', webp.rps, webp.p50, webp.cpuPerRequest, bytes.get('webp')!],
      ['avif', avif.rps, avif.p50, avif.cpuPerRequest, bytes.get('avif')!],
      [
        'avif/webp (goal CPU <= 3)',
        avif.rps / webp.rps,
        avif.p50 / webp.p50,
        avif.cpuPerRequest / webp.cpuPerRequest,
        bytes.get('avif')! / bytes.get('webp')!,
      ],
    ]
  )
}

/** A fresh service (its defaults), 16 concurrent transforms of distinct 24 MP sources; VmHWM after. */
async function benchPeakMemory(
  nc: NatsConnection,
  origin: OriginServer,
  env: Record<string, string>,
  bursts: number
): Promise<void> {
  origin.add('photo-24mp.jpg', { body: await photoLikeJpeg(6000, 4000, 11), contentType: 'image/jpeg' })
  const service = await startService('images', { ...env, DC: 'lon' })
  try {
    const rows: (string | number)[][] = [
      ['idle', '-', '-', '-', memoryMb(service.proc.pid, 'VmRSS'), memoryMb(service.proc.pid, 'VmHWM')],
    ]
    for (let burst = 1; burst <= bursts; burst++) {
      const started = performance.now()
      const answers = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          requestTransform(
            nc,
            { source: origin.fileUrl('photo-24mp.jpg', `burst=${burst}&i=${i}`), options: { width: WIDTH } },
            { dc: 'lon', timeoutMs: 120_000 }
          )
        )
      )
      rows.push([
        `burst ${burst}: 16 x 24 MP`,
        answers.filter((a) => a.status === 200).length,
        answers.filter((a) => a.error?.code === 'busy').length,
        performance.now() - started,
        memoryMb(service.proc.pid, 'VmRSS'),
        memoryMb(service.proc.pid, 'VmHWM'),
      ])
    }
    printTable(
      'image service memory: 16 concurrent 24 MP (6000x4000) JPEG -> 800 px WebP, distinct sources (goal VmHWM <= 512 MB)',
      ['phase', 'ok', 'busy', 'wall ms', 'VmRSS MB', 'VmHWM MB'],
      rows
    )
  } finally {
    await service.stop()
  }
}

/** (a): the physical baseline. GET /?url=<source>&w=<width>&q=<quality> */
function serveBaseline(port: number): void {
  const transform = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://baseline')
    if (url.pathname === '/health') return void res.end('ok')
    const source = await fetch(url.searchParams.get('url') ?? '')
    const input = Buffer.from(await source.arrayBuffer())
    const output = await sharp(input)
      .resize({ width: Number(url.searchParams.get('w')) })
      .webp({ quality: Number(url.searchParams.get('q')) })
      .toBuffer()
    res.writeHead(200, { 'content-type': 'image/webp', 'content-length': output.length }).end(output)
  }
  createServer((req, res) => {
    transform(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)))
  }).listen(port, '127.0.0.1')
}

/** (b): ipx with HTTP storage limited to the origin's host. */
async function serveIpx(port: number, originHost: string): Promise<void> {
  const { createIPX, createIPXNodeServer, ipxHttpStorage } = await import('ipx')
  const ipx = createIPX({ storage: ipxHttpStorage({ domains: [originHost] }) })
  const handler = createIPXNodeServer(ipx)
  createServer((req, res) => {
    if (req.url === '/health') return void res.end('ok')
    void handler(req, res)
  }).listen(port, '127.0.0.1')
}

if (import.meta.main) {
  const [role, port, originHost] = process.argv.slice(2)
  if (role === 'baseline') serveBaseline(Number(port))
  else if (role === 'ipx') await serveIpx(Number(port), originHost!)
  else await benchImagesBackend()
}
