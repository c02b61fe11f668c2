/**
 * Asks the image service for a transform the way the edge does (nats-core `requestMany`, sentinel
 * strategy) and reassembles the chunked reply, checking the protocol on the way.
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core'
import { imageErrorBodySchema, imageReplyHeaders, type ResolvedImageOptions } from '#shared/images.ts'
import { subjects } from '#shared/subjects.ts'

export interface TransformAnswer {
  status: number
  contentType: string
  width?: number
  height?: number
  chunks: number
  body: Buffer
  /** The service's ETag of the whole body (Image-ETag). */
  etag: string | null
  /** For error answers. */
  error?: { code: string; message: string }
  ms: number
}

/** Options as the edge sends them: every field the schema requires, defaults filled in. */
export function imageOptions(partial: Partial<ResolvedImageOptions> = {}): ResolvedImageOptions {
  return { fit: 'scale-down', gravity: 'auto', format: 'webp', metadata: 'none', ...partial }
}

export async function requestTransform(
  nc: NatsConnection,
  request: { source: string; options?: Partial<ResolvedImageOptions> } | string,
  opts: { dc?: string; subject?: string; timeoutMs?: number; headers?: Record<string, string> } = {}
): Promise<TransformAnswer> {
  const started = performance.now()
  const payload =
    typeof request === 'string'
      ? request
      : JSON.stringify({ source: request.source, options: imageOptions(request.options) })
  const replies = await nc.requestMany(opts.subject ?? subjects.imageTransform(opts.dc ?? 'fra'), payload, {
    strategy: 'sentinel',
    maxWait: opts.timeoutMs ?? 20_000,
    headers: opts.headers ? toHeaders(opts.headers) : undefined,
  })
  const parts: Buffer[] = []
  let first:
    { status: number; contentType: string; width?: number; height?: number; etag: string | null } | undefined
  let count = 0
  let sentinel = false
  for await (const msg of replies) {
    if (msg.data.length === 0) {
      sentinel = true
      break
    }
    const h = msg.headers
    if (!h) throw new Error('a reply message without headers')
    const [index, total] = (h.get(imageReplyHeaders.chunk) || '').split('/').map(Number)
    if (index !== parts.length + 1 || !total || (count && total !== count))
      throw new Error(`chunk ${h.get(imageReplyHeaders.chunk)} out of order after ${parts.length}`)
    count = total
    const width = h.get(imageReplyHeaders.width)
    const height = h.get(imageReplyHeaders.height)
    const meta = {
      status: Number(h.get(imageReplyHeaders.status)),
      contentType: h.get(imageReplyHeaders.contentType),
      width: width ? Number(width) : undefined,
      height: height ? Number(height) : undefined,
      etag: h.get(imageReplyHeaders.etag) || null,
    }
    if (first && JSON.stringify(meta) !== JSON.stringify(first))
      throw new Error('headers differ between chunks')
    first = meta
    parts.push(Buffer.from(msg.data))
  }
  if (!sentinel) throw new Error(`no sentinel within the wait (${parts.length} messages)`)
  if (!first || parts.length !== count)
    throw new Error(`incomplete reply: ${parts.length} of ${count} chunks`)
  const body = Buffer.concat(parts)
  const answer: TransformAnswer = { ...first, chunks: count, body, ms: performance.now() - started }
  if (first.status !== 200) answer.error = imageErrorBodySchema.parse(JSON.parse(body.toString())).error
  return answer
}

function toHeaders(values: Record<string, string>) {
  const h = natsHeaders()
  for (const [name, value] of Object.entries(values)) h.set(name, value)
  return h
}
