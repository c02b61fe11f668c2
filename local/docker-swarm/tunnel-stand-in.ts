/**
 * The local swarm's stand-in for a datacenter's Cloudflare Tunnel connector (cloudflared-<dc>), run by
 * stack.local.yml in place of Cloudflare's image, which cannot reach Cloudflare from here. Like the
 * tunnel's ingress rules, it reaches the datacenter's services by their names on the overlay; unlike the
 * tunnel, it listens (host-mode ports on its node) instead of dialling out, and forwards TCP, so TLS to
 * the NATS WebSocket stays end to end and the web service checks the edge's proof itself.
 *
 *   node tunnel-stand-in.ts <listen port>=<service>:<port> ...   e.g. 8080=web-fra1:8080
 *   cloudflared tunnel --metrics <addr> ready   the image's `cloudflared` (stack.yml's health check):
 *                                               exits 0 when the first listen port accepts a connection
 *
 * The name is resolved for every connection and each address tried in turn, so a rolling update's new
 * task is found at once and a stopping one is skipped. It runs in a container: Node's built-ins only.
 */
import { lookup } from 'node:dns/promises'
import { connect, createServer, type Socket } from 'node:net'

interface Route {
  listen: number
  host: string
  port: number
}

function parseRoute(arg: string): Route {
  const match = /^(\d+)=([a-z0-9.-]+):(\d+)$/.exec(arg)
  if (!match) {
    console.error(`tunnel-stand-in: "${arg}" is not <listen port>=<service>:<port>`)
    process.exit(64)
  }
  return { listen: Number(match[1]), host: match[2]!, port: Number(match[3]) }
}

async function dial(host: string, port: number): Promise<Socket> {
  const addresses = await lookup(host, { all: true })
  let last: unknown = new Error(`${host} has no address`)
  for (const { address } of addresses) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect({ host: address, port, timeout: 3_000 })
        socket.once('connect', () => resolve(socket.setTimeout(0)))
        socket.once('timeout', () => socket.destroy(new Error(`${address}:${port} timed out`)))
        socket.once('error', reject)
      })
    } catch (error) {
      last = error
    }
  }
  throw last
}

function serve(route: Route): void {
  createServer((client) => {
    client.pause()
    dial(route.host, route.port).then(
      (upstream) => {
        client.pipe(upstream).pipe(client)
        client.resume()
        const close = () => (client.destroy(), upstream.destroy())
        client.once('error', close).once('close', close)
        upstream.once('error', close).once('close', close)
      },
      (error: Error) => {
        const where = `${route.host}:${route.port}`
        console.log(JSON.stringify({ level: 'warn', msg: 'no upstream', route: where, error: error.message }))
        client.destroy()
      }
    )
  }).listen(route.listen, '0.0.0.0')
}

function probeReady(port: number): void {
  const probe = connect({ host: '127.0.0.1', port, timeout: 2_000 })
  probe.once('connect', () => process.exit(0))
  probe.once('error', () => process.exit(1))
  probe.once('timeout', () => process.exit(1))
}

const args = process.argv.slice(2)
if (args.includes('ready')) probeReady(8080)
else {
  for (const route of args.map(parseRoute)) serve(route)
  console.log(JSON.stringify({ level: 'info', msg: 'tunnel stand-in listening', routes: args }))
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0))
}
