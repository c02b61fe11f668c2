/**
 * A bounded log file for a supervised process: when it passes `maxBytes` it is renamed to `.1`
 * (replacing the previous one), so a chatty process can never fill the disk.
 */
import { closeSync, openSync, renameSync, statSync, writeSync } from 'node:fs'

export class BoundedLogFile {
  readonly path: string
  readonly maxBytes: number
  #fd: number
  #size: number
  #closed = false

  constructor(path: string, maxBytes: number) {
    this.path = path
    this.maxBytes = maxBytes
    this.#fd = openSync(path, 'a')
    this.#size = statSync(path).size
  }

  write(chunk: Buffer | string): void {
    if (this.#closed) return
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (this.#size + bytes.length > this.maxBytes && this.#size > 0) this.#rotate()
    writeSync(this.#fd, bytes)
    this.#size += bytes.length
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    closeSync(this.#fd)
  }

  #rotate(): void {
    closeSync(this.#fd)
    renameSync(this.path, `${this.path}.1`)
    this.#fd = openSync(this.path, 'a')
    this.#size = 0
  }
}
