/**
 * Logs are bounded locally too: a service flooded with bad input writes error lines as fast as it
 * can, and the supervisor's log file for it stays under its cap (one rotated predecessor kept).
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '@nats-io/transport-node'
import { startNatsServer, type TestNatsServer } from '../support/nats-server.ts'
import { projectRoot } from '../../local/platform.ts'
import { startProcess, stopProcess } from '../../local/processes.ts'
import { freePort } from '../../local/free-port.ts'
import { waitForHttp } from '../../local/wait.ts'
import { subjects } from '#shared/subjects.ts'
import { natsAuth, testNatsCredentials } from '../support/nats-credentials.ts'
import { testOriginProof } from '../support/origin-proof.ts'

const CAP = 64 * 1024
let nats: TestNatsServer

beforeAll(async () => {
  nats = await startNatsServer('log-cap')
})
afterAll(async () => {
  await nats?.dispose()
})

describe('supervised logs stay under their cap', () => {
  it('a web service flooded with malformed heartbeats logs every one, and its log never passes the cap', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtta-logcap-'))
    const port = await freePort()
    const internalPort = await freePort()
    const web = startProcess({
      dc: 'fra',
      service: 'web',
      url: `http://127.0.0.1:${port}`,
      command: process.execPath,
      args: [join(projectRoot, 'backend', 'web', 'service.ts')],
      cwd: projectRoot,
      env: {
        PATH: process.env.PATH ?? '',
        DC: 'fra',
        NATS_URL: nats.url,
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: String(port),
        NATS_NKEY_SEED_FILE: testNatsCredentials().seedFile('web'),
        INTERNAL_HTTP_HOST: '127.0.0.1',
        INTERNAL_HTTP_PORT: String(internalPort),
        ...testOriginProof,
      },
      logFile: join(dir, 'fra-web.log'),
      logMaxBytes: CAP,
    })
    try {
      await waitForHttp(`http://127.0.0.1:${internalPort}/readyz`, {
        timeoutMs: 15_000,
        what: 'web',
        abort: web.exited,
      })
      const nc = await connect({ servers: nats.url, ...natsAuth() })
      for (let i = 0; i < 5_000; i++) nc.publish(subjects.heartbeat('fra', 'images'), `not json ${i}`)
      await nc.flush()
      await nc.close()
      // Every line went somewhere: wait until the last one is written.
      await expect
        .poll(() => readFileSync(join(dir, 'fra-web.log'), 'utf8').includes('ignored malformed heartbeat'), {
          timeout: 10_000,
        })
        .toBe(true)
      await sleep(500)
    } finally {
      await stopProcess(web)
    }
    const files = readdirSync(dir).sort()
    expect(files).toEqual(['fra-web.log', 'fra-web.log.1'])
    for (const f of files) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(CAP)
    const total = files.reduce((n, f) => n + readFileSync(join(dir, f), 'utf8').split('\n').length, 0)
    console.log(`5000 bad messages -> ${total} lines kept in ${files.length} files of at most ${CAP} bytes`)
  })
})
