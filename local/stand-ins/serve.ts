/**
 * Runs one stand-in as its own process for the local platform, until SIGTERM:
 *   node local/stand-ins/serve.ts github|discord <host> <port>
 */
import { startDiscordStandIn } from './discord.ts'
import { startGitHubStandIn } from './github.ts'

const [kind, host, port] = process.argv.slice(2)
const start = { github: startGitHubStandIn, discord: startDiscordStandIn }[kind ?? '']
if (!start || !host || !port) {
  console.error('usage: node local/stand-ins/serve.ts github|discord <host> <port>')
  process.exit(2)
}
const standIn = await start({ host, port: Number(port) })
console.log(JSON.stringify({ level: 'info', msg: `${kind} stand-in listening`, url: standIn.url }))
const stop = () => void standIn.stop().then(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
