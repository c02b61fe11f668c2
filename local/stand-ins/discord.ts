/**
 * A local stand-in for Discord's Execute Webhook endpoint
 * (`POST /api/webhooks/{id}/{token}[?wait=true]`, also under `/api/v10/`): records every call,
 * answers with a message object (or 204 without `wait`), checks the documented embed limits
 * (a violation gets Discord's own 400 "Invalid Form Body"), and can be told to answer the next
 * calls with 429 (the documented body and rate-limit headers), 401, 404, 400 or 500 — from this
 * process (`respondNext`) or another (`POST /_control/respond {"responses": [...]}`, answered with
 * `{"queued": [...], "pending": n}`; `GET /_control/calls`; `POST /_control/reset`).
 */
import { readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { errorMessage } from '#shared/error-message.ts'
import { readBody, Router, sendJson, serveHttp } from './http.ts'

const fixturesDir = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'discord')
const fixture = <T>(name: string, schema: z.ZodType<T>): T =>
  schema.parse(JSON.parse(readFileSync(join(fixturesDir, name), 'utf8')))
/** A saved answer of Discord's: its body, and for the 429 examples its headers. */
const answerSchema = z.looseObject({
  body: z.record(z.string(), z.unknown()),
  headers: z.record(z.string(), z.string()).default({}),
})

export const scriptedResponseSchema = z.union([
  z.number().int().min(200).max(599),
  z.strictObject({
    status: z.number().int().min(200).max(599),
    /** For 429: seconds (float) in `retry_after`; `Retry-After` is its ceiling. Default 0.25. */
    retryAfter: z.number().min(0).max(3600).optional(),
    /** For 429: which documented example (user, shared, global). Default user. */
    scope: z.enum(['user', 'shared', 'global']).optional(),
    body: z.unknown().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    /** Answer after this long. */
    delayMs: z.number().int().min(0).max(60_000).optional(),
  }),
])
export type ScriptedResponse = z.infer<typeof scriptedResponseSchema>

export interface WebhookCall {
  webhookId: string
  token: string
  wait: boolean
  body: unknown
  contentType: string
  userAgent: string
  status: number
  at: number
}

/** The calls a running Discord stand-in has recorded (GET /_control/calls), e.g. the one `npm start` runs. */
export async function recordedCalls(url: string): Promise<WebhookCall[]> {
  return (await (await fetch(`${url}/_control/calls`)).json()) as WebhookCall[]
}

/** The titles of a recorded message's embeds. */
export const embedTitles = (call: WebhookCall): string[] =>
  ((call.body as { embeds?: Array<{ title?: string }> } | null)?.embeds ?? []).map((e) => e.title ?? '')

export interface DiscordStandIn {
  url: string
  /** A webhook URL this stand-in answers. */
  webhookUrl: string
  calls(): WebhookCall[]
  /** The next calls get these answers, in order; after them, success again. */
  respondNext(...responses: ScriptedResponse[]): void
  reset(): void
  stop(): Promise<void>
}

const limits = fixture(
  'limits.json',
  z.looseObject({
    content_max_chars: z.number(),
    embeds_per_message_max: z.number(),
    embed: z.record(
      z.enum([
        'title',
        'description',
        'fields_max',
        'field_name',
        'field_value',
        'footer_text',
        'author_name',
      ]),
      z.number()
    ),
    embeds_total_chars_max: z.number(),
  })
)

/** Any JSON value read as an object (its fields may be anything) or a list: what the limits look at. */
const fieldsOf = (value: unknown) => z.record(z.string(), z.unknown()).catch({}).parse(value)
const listOf = (value: unknown) => z.array(z.unknown()).catch([]).parse(value)

/** Discord's documented limits; the first violation as a 50035 error path, or null. */
export function embedLimitViolation(message: unknown): { path: string[]; message: string } | null {
  const len = (s: unknown) => (typeof s === 'string' ? s.trim().length : 0)
  if (typeof message !== 'object' || message === null) return { path: [], message: 'Must be an object' }
  const body = fieldsOf(message)
  if (len(body.content) > limits.content_max_chars)
    return { path: ['content'], message: `Must be ${limits.content_max_chars} or fewer in length.` }
  const embeds = listOf(body.embeds).map(fieldsOf)
  if (!body.content && embeds.length === 0) return { path: [], message: 'Cannot send an empty message' }
  if (embeds.length > limits.embeds_per_message_max)
    return { path: ['embeds'], message: `Must be ${limits.embeds_per_message_max} or fewer in length.` }
  let total = 0
  for (const [i, e] of embeds.entries()) {
    const check = (value: unknown, max: number, ...path: string[]) =>
      len(value) > max
        ? { path: ['embeds', String(i), ...path], message: `Must be ${max} or fewer in length.` }
        : null
    const fields = listOf(e.fields).map(fieldsOf)
    const footerText = fieldsOf(e.footer).text
    const authorName = fieldsOf(e.author).name
    const problem =
      check(e.title, limits.embed.title, 'title') ??
      check(e.description, limits.embed.description, 'description') ??
      check(footerText, limits.embed.footer_text, 'footer', 'text') ??
      check(authorName, limits.embed.author_name, 'author', 'name') ??
      (fields.length > limits.embed.fields_max
        ? {
            path: ['embeds', String(i), 'fields'],
            message: `Must be ${limits.embed.fields_max} or fewer in length.`,
          }
        : null) ??
      fields
        .map(
          (f, j) =>
            check(f.name, limits.embed.field_name, 'fields', String(j), 'name') ??
            check(f.value, limits.embed.field_value, 'fields', String(j), 'value')
        )
        .find(Boolean) ??
      null
    if (problem) return problem
    total +=
      len(e.title) +
      len(e.description) +
      len(footerText) +
      len(authorName) +
      fields.reduce((n, f) => n + len(f.name) + len(f.value), 0)
  }
  if (total > limits.embeds_total_chars_max)
    return {
      path: ['embeds'],
      message: `Embed size exceeds maximum size of ${limits.embeds_total_chars_max}`,
    }
  return null
}

/** Discord's nested error object: `{ embeds: { 0: { title: { _errors: [...] } } } }`. */
interface ErrorTree {
  [key: string]: ErrorTree | Array<{ code: string; message: string }>
}

function errorAtPath(path: string[], message: string) {
  const errors: ErrorTree = {}
  let node = errors
  for (const key of path) {
    const child: ErrorTree = {}
    node[key] = child
    node = child
  }
  node._errors = [{ code: 'BASE_TYPE_MAX_LENGTH', message }]
  return { code: 50035, errors, message: 'Invalid Form Body' }
}

let snowflake = BigInt(Date.now() - 1420070400000) << 22n
const nextSnowflake = () => String((snowflake += 1n))

export async function startDiscordStandIn(
  opts: { host?: string; port?: number } = {}
): Promise<DiscordStandIn> {
  const recorded: WebhookCall[] = []
  const script: ScriptedResponse[] = []

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const rateLimit = {
      'x-ratelimit-limit': '5',
      'x-ratelimit-remaining': '4',
      'x-ratelimit-reset': String((Date.now() + 2000) / 1000),
      'x-ratelimit-reset-after': '2.000',
      'x-ratelimit-bucket': 'stand-in-webhook',
    }
    if (body === undefined) {
      res.writeHead(status, { ...rateLimit, ...headers })
      return void res.end()
    }
    sendJson(res, status, body, { 'content-type': 'application/json', ...rateLimit, ...headers })
  }

  const scripted = (res: ServerResponse, r: Exclude<ScriptedResponse, number> | number): number => {
    const answer = typeof r === 'number' ? { status: r } : r
    const status = answer.status
    if (status === 429) {
      const example = fixture(`response-429-${answer.scope ?? 'user'}.http.json`, answerSchema)
      const retryAfter = answer.retryAfter ?? 0.25
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(example.headers)) headers[k.toLowerCase()] = v
      headers['retry-after'] = String(Math.ceil(retryAfter))
      if ('x-ratelimit-reset-after' in headers) headers['x-ratelimit-reset-after'] = retryAfter.toFixed(3)
      if ('x-ratelimit-reset' in headers)
        headers['x-ratelimit-reset'] = String(Date.now() / 1000 + retryAfter)
      send(res, 429, answer.body ?? { ...example.body, retry_after: retryAfter }, {
        ...headers,
        ...answer.headers,
      })
      return status
    }
    const bodies: Record<number, unknown> = {
      400: fixture('response-400-invalid-form-body.json', answerSchema).body,
      401: fixture('response-401-invalid-webhook-token.json', answerSchema).body,
      404: fixture('response-404-unknown-webhook.json', answerSchema).body,
    }
    send(
      res,
      status,
      answer.body ?? bodies[status] ?? { message: `${status}: stand-in error`, code: 0 },
      answer.headers
    )
    return status
  }

  /** `raw`: the request body, read before any route (every call is recorded with it). */
  const router = new Router<{ raw: string }>(() => ({ raw: '' }))
  router.use(async (x, next) => {
    x.state.raw = (await readBody(x.req)).toString('utf8')
    return next()
  })

  router.post('/_control/respond', ({ res, state }) => {
    const parsed = z
      .strictObject({ responses: z.array(scriptedResponseSchema) })
      .safeParse(JSON.parse(state.raw || '{}'))
    if (!parsed.success) return send(res, 400, { message: parsed.error.message })
    script.push(...parsed.data.responses)
    // What was set, so a script driving the stand-in sees it took: these answers, and how many
    // scripted answers now wait (these after any queued before).
    return send(res, 200, { queued: parsed.data.responses, pending: script.length })
  })
  router.post('/_control/reset', ({ res }) => {
    recorded.length = 0
    script.length = 0
    return send(res, 204, undefined)
  })
  router.get('/_control/calls', ({ res }) => send(res, 200, recorded))

  router.post(
    '/api{/v:version(\\d+)}?/webhooks/:id(\\d+)/:token([\\w\\-]+)',
    async ({ req, res, url, params, state }) => {
      const wait = ['true', '1', 'True'].includes(url.searchParams.get('wait') ?? '')
      let body: unknown = null
      try {
        body = JSON.parse(state.raw)
      } catch {
        // recorded as null; answered below
      }
      const call: WebhookCall = {
        webhookId: params.id!,
        token: params.token!,
        wait,
        body,
        contentType: String(req.headers['content-type'] ?? ''),
        userAgent: String(req.headers['user-agent'] ?? ''),
        status: 0,
        at: Date.now(),
      }
      recorded.push(call)
      const next = script.shift()
      if (next !== undefined) {
        const delay = typeof next === 'number' ? 0 : (next.delayMs ?? 0)
        if (delay) await sleep(delay)
        call.status = scripted(res, next)
        return
      }
      if (!call.contentType.startsWith('application/json') || body === null) {
        call.status = 400
        return send(res, 400, { code: 50035, errors: {}, message: 'Invalid Form Body' })
      }
      const violation = embedLimitViolation(body)
      if (violation) {
        call.status = 400
        return send(res, 400, errorAtPath(violation.path, violation.message))
      }
      call.status = wait ? 200 : 204
      if (!wait) return send(res, 204, undefined)
      const b = fieldsOf(body)
      send(res, 200, {
        id: nextSnowflake(),
        type: 0,
        content: b.content ?? '',
        channel_id: '100000000000000001',
        author: {
          bot: true,
          id: call.webhookId,
          username: b.username ?? 'Stand-in Webhook',
          avatar: null,
          discriminator: '0000',
        },
        attachments: [],
        embeds: listOf(b.embeds).map((e) => ({ type: 'rich', ...fieldsOf(e) })),
        mentions: [],
        mention_roles: [],
        pinned: false,
        mention_everyone: false,
        tts: false,
        timestamp: new Date().toISOString(),
        edited_timestamp: null,
        flags: 0,
        components: [],
        webhook_id: call.webhookId,
      })
    }
  )

  const http = await serveHttp(
    (req, res) =>
      router.handle(req, res, ({ res }) => send(res, 404, { message: '404: Not Found', code: 0 })),
    {
      ...opts,
      onError: (res, error, status) => send(res, status, { message: errorMessage(error), code: 0 }),
    }
  )
  const url = http.url

  return {
    url,
    webhookUrl: `${url}/api/webhooks/123456789012345678/stand-in-webhook-token`,
    calls: () => [...recorded],
    respondNext: (...responses) => void script.push(...responses.map((r) => scriptedResponseSchema.parse(r))),
    reset() {
      recorded.length = 0
      script.length = 0
    },
    stop: () => http.close(),
  }
}
