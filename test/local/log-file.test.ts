import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BoundedLogFile } from '../../local/log-file.ts'

describe('BoundedLogFile', () => {
  it('never lets a log grow past its cap: it rotates to .1 and keeps the newest lines', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'vtta-log-')), 'svc.log')
    const log = new BoundedLogFile(path, 1_000)
    for (let i = 0; i < 500; i++) log.write(`line ${String(i).padStart(4, '0')} ${'x'.repeat(20)}\n`)
    log.close()
    expect(statSync(path).size).toBeLessThanOrEqual(1_000)
    expect(statSync(`${path}.1`).size).toBeLessThanOrEqual(1_000)
    expect(readFileSync(path, 'utf8')).toContain('line 0499')
    expect(readFileSync(`${path}.1`, 'utf8')).not.toContain('line 0000')
  })
})
