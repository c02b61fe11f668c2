/**
 * The floor of an edge answer: a bare Hono route returning the same image bytes from memory
 * (fetched once from SOURCE_URL). The image proxy's cache-hit path is measured against it.
 */
import { Hono } from 'hono'

let bytes: ArrayBuffer | undefined
const app = new Hono<{ Bindings: { SOURCE_URL: string } }>()

app.get('/ready', (c) => c.text('ok'))
app.get('/bytes', async (c) => {
  bytes ??= await (await fetch(c.env.SOURCE_URL)).arrayBuffer()
  return c.body(bytes, 200, { 'content-type': 'image/webp' })
})

export default app
