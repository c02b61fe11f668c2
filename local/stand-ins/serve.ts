/**
 * Runs one stand-in as its own process for the local platform, until SIGTERM:
 *   node local/stand-ins/serve.ts github|discord <host> <port>
 * The GitHub stand-in is the local GitHub App: GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_FILE (the
 * key `npm start` generated under .local/, which the release services are given too).
 */
import { readFileSync } from 'node:fs'
import { startDiscordStandIn } from './discord.ts'
import { startGitHubStandIn } from './github/index.ts'

const [kind, host, port] = process.argv.slice(2)
const appKeyFile = process.env.GITHUB_APP_PRIVATE_KEY_FILE
const app = appKeyFile
  ? { id: Number(process.env.GITHUB_APP_ID), privateKey: readFileSync(appKeyFile, 'utf8') }
  : undefined
const start = {
  github: (o: { host: string; port: number }) => startGitHubStandIn({ ...o, app }),
  discord: startDiscordStandIn,
}[kind ?? '']
if (!start || !host || !port) {
  console.error('usage: node local/stand-ins/serve.ts github|discord <host> <port>')
  process.exit(2)
}
const standIn = await start({ host, port: Number(port) })
console.log(JSON.stringify({ level: 'info', msg: `${kind} stand-in listening`, url: standIn.url }))
const stop = () => void standIn.stop().then(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
