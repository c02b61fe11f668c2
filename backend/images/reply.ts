/**
 * The reply protocol of shared/images.ts: the image in as many messages as NATS max_payload needs,
 * each with the status, type, chunk index, size and ETag headers, then one empty message (the
 * sentinel that ends the edge's `requestMany`). Errors are one JSON message, then the sentinel.
 */
import { createHash } from 'node:crypto'
import { headers, type Msg, type NatsConnection } from '@nats-io/nats-core'
import { etagOfDigest, imageErrors, imageReplyHeaders, type ImageErrorCode } from '#shared/images.ts'

/** Room left in each message for the protocol line and headers (about 150 bytes in practice). */
export const HEADER_HEADROOM_BYTES = 4096

export interface ImageReply {
  data: Uint8Array
  contentType: string
  width: number
  height: number
}

/** Largest chunk for this connection: the server's max_payload less the headers, or the configured cap. */
export function chunkSize(nc: NatsConnection, cap?: number): number {
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024
  return Math.max(1024, Math.min(cap ?? Infinity, maxPayload - HEADER_HEADROOM_BYTES))
}

/** The body's ETag, hashed here so that the edge does not hash every image again (Image-ETag). */
const etagOf = (body: Uint8Array | string) => etagOfDigest(createHash('sha256').update(body).digest())

export function replyImage(msg: Msg, image: ImageReply, chunkBytes: number): void {
  const count = Math.max(1, Math.ceil(image.data.length / chunkBytes))
  const etag = etagOf(image.data)
  for (let i = 0; i < count; i++) {
    const h = headers()
    h.set(imageReplyHeaders.status, '200')
    h.set(imageReplyHeaders.contentType, image.contentType)
    h.set(imageReplyHeaders.chunk, `${i + 1}/${count}`)
    h.set(imageReplyHeaders.width, String(image.width))
    h.set(imageReplyHeaders.height, String(image.height))
    h.set(imageReplyHeaders.etag, etag)
    msg.respond(image.data.subarray(i * chunkBytes, (i + 1) * chunkBytes), { headers: h })
  }
  msg.respond()
}

export function replyError(msg: Msg, code: ImageErrorCode, message: string): void {
  const h = headers()
  h.set(imageReplyHeaders.status, String(imageErrors[code]))
  h.set(imageReplyHeaders.contentType, 'application/json')
  h.set(imageReplyHeaders.chunk, '1/1')
  const body = JSON.stringify({ error: { code, message } })
  h.set(imageReplyHeaders.etag, etagOf(body))
  msg.respond(body, { headers: h })
  msg.respond()
}
