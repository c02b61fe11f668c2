/**
 * DiscordWebhook when Discord does not answer at all: the result is a retry whose message says why
 * (refused, timed out), in words, for the log and the dead letter.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DiscordWebhook } from '../../../backend/notifier/discord.ts'
import { freePort } from '../../../local/free-port.ts'

/** Takes the request and never answers it. */
let silent: Server

beforeAll(async () => {
  silent = createServer(() => undefined)
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
})
afterAll(async () => {
  silent.closeAllConnections()
  await new Promise((resolve) => silent.close(resolve))
})

const webhookPath = '/api/webhooks/123456789012345678/token'
/** A matcher typed as what it stands for, not `any`. */
const refused: unknown = expect.stringMatching(/^fetch failed: .*ECONNREFUSED/)

describe('a Discord webhook that does not answer', () => {
  it('refused: a retry naming the refusal', async () => {
    const port = await freePort()
    const result = await new DiscordWebhook(`http://127.0.0.1:${port}${webhookPath}`, 2_000).execute({})
    expect(result).toEqual({
      kind: 'retry',
      status: null,
      message: refused,
    })
  })

  it('silent past the timeout: a retry saying how long it waited', async () => {
    const { port } = silent.address() as AddressInfo
    const result = await new DiscordWebhook(`http://127.0.0.1:${port}${webhookPath}`, 200).execute({})
    expect(result).toEqual({ kind: 'retry', status: null, message: 'no answer within 200 ms' })
  })
})
