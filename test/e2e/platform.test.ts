/**
 * End to end: `npm start`'s supervisor brings up three datacenters and the edge, a client near each
 * datacenter is served by it, and Ctrl-C leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { projectRoot } from '../../local/platform.ts'
import { freePort } from '../../local/free-port.ts'
import type { StateFile } from '../../local/state.ts'
import { liveProcessesInGroup } from '../../local/process-table.ts'

interface Started {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

function startSupervisor(env: Record<string, string>): Started {
  let output = ''
  const child = spawn(process.execPath, [join(projectRoot, 'local', 'start.ts')], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, output: () => output, exited }
}

const alive = (pid: number) => liveProcessesInGroup(pid).includes(pid)
/** Every process whose command line mentions `needle` (our LOCAL_DIR is in every nats and wrangler argv). */
const processesMentioning = (needle: string) =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)
      } catch {
        return false
      }
    })

describe('npm start: the local platform', () => {
  const localDir = mkdtempSync(join(tmpdir(), 'vtta-e2e-'))
  let platform: Started
  let edge: string
  let state: StateFile

  beforeAll(async () => {
    const port = await freePort()
    edge = `http://127.0.0.1:${port}`
    platform = startSupervisor({ LOCAL_DIR: localDir, EDGE_PORT: String(port) })
    const ready = await Promise.race([
      new Promise<boolean>((resolve) => {
        const check = () => (platform.output().includes('ready in') ? resolve(true) : setTimeout(check, 100))
        check()
      }),
      platform.exited.then(() => false),
    ])
    if (!ready) throw new Error(`the platform did not start:\n${platform.output()}`)
    state = JSON.parse(readFileSync(join(localDir, 'state.json'), 'utf8')) as StateFile
  }, 60_000)

  afterAll(async () => {
    if (platform && platform.child.exitCode === null) {
      platform.child.kill('SIGINT')
      await platform.exited
    }
  })

  it('starts to ready within 30 s and prints what runs where', () => {
    const seconds = Number(/ready in ([\d.]+) s/.exec(platform.output())![1])
    console.log(`platform ready in ${seconds} s`)
    expect(seconds).toBeLessThan(30)
    for (const dc of ['fra', 'ams', 'lon'])
      expect(platform.output()).toMatch(new RegExp(`${dc}\\s+web\\s+\\d+\\s+http://127\\.0\\.\\d\\.1:8080`))
  })

  it('writes .local/state.json with every process, each datacenter on its own loopback address', () => {
    const byDc = (dc: string) => state.processes.filter((p) => p.dc === dc).map((p) => p.service)
    expect(byDc('fra')).toEqual(expect.arrayContaining(['nats', 'web']))
    expect(state.processes.find((p) => p.dc === 'ams' && p.service === 'web')!.url).toBe(
      'http://127.0.2.1:8080'
    )
    expect(state.processes.find((p) => p.dc === 'lon' && p.service === 'nats')!.url).toBe(
      'nats://127.0.3.1:4222'
    )
    expect(state.processes.find((p) => p.service === 'edge')!.url).toBe(edge)
    for (const p of state.processes) expect(alive(p.pid)).toBe(true)
  })

  it.each([
    ['fra', '50.11,8.68'],
    ['ams', '52.37,4.90'],
    ['lon', '51.51,-0.13'],
  ])('serves / to a client near %s from %s', async (dc, geo) => {
    const res = await fetch(`${edge}/`, { headers: { 'x-client-geo': geo } })
    expect(res.status).toBe(200)
    expect(res.headers.get('x-datacenter')).toBe(dc)
    expect(await res.text()).toContain(`data-datacenter="${dc}"`)
  })

  it.each(['fra', 'ams', 'lon'])('reaches %s over NATS through the edge bridge', async (dc) => {
    const res = await fetch(`${edge}/health/${dc}`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ dc, answeredBy: 'web' })
  })

  it('shows each datacenter healthy, NATS clustered and JetStream up', async () => {
    for (const p of state.processes.filter((p) => p.service === 'web')) {
      const doc = (await (await fetch(`${p.url}/health`)).json()) as { status: string; nats: object }
      expect(doc).toMatchObject({ status: 'ok', nats: { connected: true, jetstream: true } })
    }
    const routez = (await (await fetch('http://127.0.1.1:8222/routez')).json()) as { num_routes: number }
    expect(routez.num_routes).toBe(2)
  })

  it('refuses a second platform on the same addresses with a clear message', async () => {
    const second = startSupervisor({
      LOCAL_DIR: mkdtempSync(join(tmpdir(), 'vtta-e2e-2-')),
      EDGE_PORT: String(await freePort()),
    })
    expect(await second.exited).toBe(1)
    expect(second.output()).toMatch(/127\.0\.1\.1:4222 \(nats-server\) is already in use/)
  })

  it('stops everything on Ctrl-C and leaves no process behind', async () => {
    platform.child.kill('SIGINT')
    expect(await platform.exited).toBe(0)
    for (const p of state.processes) {
      expect(alive(p.pid), `${p.dc ?? 'edge'} ${p.service} pid ${p.pid}`).toBe(false)
      // Nothing of its process group either (wrangler's workerd).
      expect(liveProcessesInGroup(p.pid), `process group of ${p.service}`).toEqual([])
    }
    expect(processesMentioning(localDir)).toEqual([])
    expect(platform.output()).toContain('stopped.')
  })
})

describe('npm start with a bad catalogue', () => {
  it('stops before starting anything, naming the offending field', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'vtta-cat-')), 'datacenters.json')
    writeFileSync(
      file,
      JSON.stringify([
        { id: 'fra', name: 'Frankfurt', lat: 50.11, lon: 8.68 },
        { id: 'ams', name: 'Amsterdam', lon: 4.9 },
      ])
    )
    const run = startSupervisor({
      DATACENTERS_FILE: file,
      LOCAL_DIR: mkdtempSync(join(tmpdir(), 'vtta-e2e-bad-')),
    })
    expect(await run.exited).toBe(1)
    expect(run.output()).toMatch(/npm start: invalid datacenter catalogue: .*datacenters\.json: \[1\]\.lat: /)
  })
})
