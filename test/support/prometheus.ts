/**
 * A real Prometheus (Debian's) for a test, on 127.0.0.1 with a free port, scraping nothing: its data
 * directory is backfilled beforehand with `promtool tsdb create-blocks-from openmetrics` from a
 * generated OpenMetrics file, so every figure the dashboard reads is known in advance.
 *
 * `dashboardHistory` is that file: seven hours of one-minute samples ending at `end`, with the metric
 * names and labels of issue #14's contract, shaped so each panel has something to show and a figure
 * to check (`expectedFigures`): a step in the request rate half an hour before the end, a disk filling
 * over five hours, a nats-server losing JetStream twenty minutes before the end.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startProcess, stopProcess, type Supervised } from '../../local/processes.ts'
import { freePort } from '../../local/free-port.ts'
import { waitForHttp } from '../../local/wait.ts'

export interface TestPrometheus {
  url: string
  proc: Supervised
  stop(): Promise<void>
}

export async function startPrometheus(openMetrics: string): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'vtta-prometheus-'))
  const history = join(dir, 'history.om')
  writeFileSync(history, openMetrics)
  await promisify(execFile)('promtool', [
    'tsdb',
    'create-blocks-from',
    'openmetrics',
    history,
    join(dir, 'data'),
  ])
  writeFileSync(join(dir, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\nscrape_configs: []\n')
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const proc = startProcess({
    dc: null,
    service: 'prometheus',
    url,
    command: 'prometheus',
    args: [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    env: { PATH: process.env.PATH ?? '' },
    logFile: join(dir, 'prometheus.log'),
  })
  await waitForHttp(`${url}/-/ready`, { timeoutMs: 20_000, what: 'prometheus', abort: proc.exited })
  return {
    url,
    proc,
    async stop() {
      await stopProcess(proc)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const MINUTE = 60

/** What the dashboard must read from `dashboardHistory` at the end of its grid (and one hour before). */
export const expectedFigures = {
  requests: { ams: 3, fra: { hourAgo: 1.1, now: 2.1 } },
  errors: { ams: 0, fra: 0.1 },
  imageCacheHitRatio: { ams: 0, fra: 0.75 },
  consumerPending: { 'GITHUB/releases': 7, 'RELEASES/notifier': 0 },
  deadLetters: { 'past hour': 6 },
  diskHeadroom: { ams: { sixHoursAgo: 0.6, now: 0.3 }, fra: 0.1 },
  jetstreamEnabled: { 'ams-1': { hourAgo: 1, now: 0 }, 'fra-1': 1 },
}

/** Seven hours of samples, one a minute, ending at `end` (Unix seconds, a whole minute). */
export function dashboardHistory(end: number): string {
  const start = end - 7 * 60 * MINUTE
  const times: number[] = []
  for (let t = start; t <= end; t += MINUTE) times.push(t)
  const lines: string[] = []
  /** One series: its value at each time. A counter's is the running sum of its per-minute increments. */
  const gauge = (name: string, labels: Record<string, string>, value: (t: number) => number) => {
    const set = Object.entries(labels)
      .map(([k, v]) => `${k}="${v}"`)
      .join(',')
    for (const t of times) lines.push(`${name}{${set}} ${value(t)} ${t}`)
  }
  const counter = (name: string, labels: Record<string, string>, perMinute: (t: number) => number) => {
    let total = 0
    gauge(name, labels, (t) => (t === start ? total : (total += perMinute(t))))
  }
  const family = (name: string, type: 'counter' | 'gauge', write: () => void) => {
    lines.push(`# TYPE ${name} ${type}`)
    write()
  }

  const web = { service: 'web', route: '/', method: 'GET' }
  family('http_requests', 'counter', () => {
    // fra: 1/s, 2/s for the last half hour; plus 0.1/s of 503. ams: 3/s, its 500s never incremented.
    counter('http_requests_total', { ...web, dc: 'fra', status: '200' }, (t) =>
      t > end - 30 * MINUTE ? 120 : 60
    )
    counter('http_requests_total', { ...web, dc: 'fra', status: '503' }, () => 6)
    counter('http_requests_total', { ...web, service: 'images', dc: 'ams', status: '200' }, () => 180)
    counter('http_requests_total', { ...web, service: 'images', dc: 'ams', status: '500' }, () => 0)
  })
  family('images_origin_cache_requests', 'counter', () => {
    counter('images_origin_cache_requests_total', { dc: 'fra', result: 'hit' }, () => 45)
    counter('images_origin_cache_requests_total', { dc: 'fra', result: 'miss' }, () => 15)
    // ams never hits: its ratio is 0, not missing.
    counter('images_origin_cache_requests_total', { dc: 'ams', result: 'miss' }, () => 30)
  })
  family('jetstream_consumer_messages', 'gauge', () => {
    const github = { stream: 'GITHUB', consumer: 'releases' }
    // Two services of two datacenters report the same consumer; the dashboard shows the larger.
    gauge(
      'jetstream_consumer_messages',
      { ...github, kind: 'pending', dc: 'fra', service: 'releases' },
      () => 7
    )
    gauge(
      'jetstream_consumer_messages',
      { ...github, kind: 'pending', dc: 'ams', service: 'releases' },
      () => 5
    )
    gauge(
      'jetstream_consumer_messages',
      { ...github, kind: 'ack_pending', dc: 'fra', service: 'releases' },
      () => 100
    )
    gauge(
      'jetstream_consumer_messages',
      { stream: 'RELEASES', consumer: 'notifier', kind: 'pending', dc: 'fra', service: 'notifier' },
      () => 0
    )
  })
  family('dead_letters', 'counter', () => {
    counter(
      'dead_letters_total',
      { consumer: 'releases', path: 'package', dc: 'fra', service: 'releases' },
      () => 0.1
    )
  })
  family('node_uname_info', 'gauge', () => {
    for (const node of ['fra', 'ams'])
      gauge('node_uname_info', { instance: `${node}:9100`, nodename: node }, () => 1)
  })
  const filesystems = [
    { node: 'fra', mountpoint: '/', fstype: 'ext4', size: 100e9, avail: () => 25e9 },
    { node: 'fra', mountpoint: '/var/lib/docker', fstype: 'ext4', size: 100e9, avail: () => 10e9 },
    // Nearly full, but memory: never the node's headroom.
    { node: 'fra', mountpoint: '/run', fstype: 'tmpfs', size: 100e6, avail: () => 1e6 },
    {
      node: 'ams',
      mountpoint: '/',
      fstype: 'ext4',
      size: 100e9,
      // 60 % free six hours before the end, filling steadily to 30 % free an hour before, then flat.
      avail: (t: number) => {
        const filling = Math.min(Math.max((t - (end - 360 * MINUTE)) / (300 * MINUTE), 0), 1)
        return Math.round((0.6 - 0.3 * filling) * 100e9)
      },
    },
  ]
  for (const [name, value] of [
    ['node_filesystem_size_bytes', (fs: (typeof filesystems)[number]) => () => fs.size],
    ['node_filesystem_avail_bytes', (fs: (typeof filesystems)[number]) => fs.avail],
  ] as const)
    family(name, 'gauge', () => {
      for (const fs of filesystems)
        gauge(name, { instance: `${fs.node}:9100`, mountpoint: fs.mountpoint, fstype: fs.fstype }, value(fs))
    })
  family('nats_jetstream_enabled', 'gauge', () => {
    gauge('nats_jetstream_enabled', { dc: 'fra', server_name: 'fra-1' }, () => 1)
    gauge('nats_jetstream_enabled', { dc: 'ams', server_name: 'ams-1' }, (t) =>
      t > end - 20 * MINUTE ? 0 : 1
    )
  })
  lines.push('# EOF')
  return lines.join('\n') + '\n'
}
