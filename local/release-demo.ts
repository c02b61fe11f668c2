/**
 * `npm run release:demo -- <fixture> [--version 1.2.3] [--prerelease] [--action released]`
 *
 * Releases a fixture module on the running local platform, as GitHub would: registers the release
 * with the GitHub stand-in, then sends a correctly signed `release` delivery to the edge
 * (`EDGE_URL`, default the edge in `.local/state.json`) and prints the
 * edge's answer. Watch it become a manifest at /modules/<id>/module.json and a message in the
 * Discord stand-in (GET <discord-stand-in>/_control/calls).
 *   LOCAL_DIR               where `npm start` keeps state.json (default .local)
 *   GITHUB_WEBHOOK_SECRET   default GitHub's documented test secret (as `npm start`)
 */
import { parseArgs } from 'node:util'
import { readRunningState } from './state.ts'
import {
  fixtureNames,
  GITHUB_TEST_SECRET,
  postDelivery,
  registerRelease,
  releaseDelivery,
} from './stand-ins/github/index.ts'
import { errorMessage, fetchFailure } from '#shared/error-message.ts'

function fail(message: string): never {
  console.error(`release:demo: ${message}`)
  process.exit(1)
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    version: { type: 'string' },
    prerelease: { type: 'boolean', default: false },
    action: { type: 'string' },
  },
})
const asked = positionals[0]
if (!asked) fail(`which module? one of: ${fixtureNames.join(', ')} (e.g. npm run release:demo -- item-piles)`)
const fixture = fixtureNames.find((name) => name === asked)
if (!fixture) fail(`unknown module "${asked}"; known: ${fixtureNames.join(', ')}`)

const { statePath, state } = (() => {
  try {
    return readRunningState()
  } catch (error) {
    return fail(errorMessage(error))
  }
})()
const standIn = (service: string) => state.processes.find((p) => p.service === service)?.url
const gitHubUrl = standIn('github-stand-in')
if (!gitHubUrl) fail(`no github-stand-in in ${statePath}: is \`npm start\` running with the stand-ins?`)
const edgeUrl = (process.env.EDGE_URL ?? state.edge).replace(/\/+$/, '')

// Each run a newer version than the last, by Foundry's ordering: 1.<day>.<second of the day>.
const now = new Date()
const day = Math.floor((now.getTime() - Date.UTC(2024, 0, 1)) / 86_400_000)
const second = now.getUTCHours() * 3600 + now.getUTCMinutes() * 60 + now.getUTCSeconds()
const version = values.version ?? `1.${day}.${second}`

const delivery = await releaseDelivery(fixture, {
  gitHubUrl,
  version,
  prerelease: values.prerelease,
  action: values.action,
  secret: process.env.GITHUB_WEBHOOK_SECRET ?? GITHUB_TEST_SECRET,
  notes: `## What's Changed\n- A demo release of ${fixture} ${version}, sent by \`npm run release:demo\``,
})
await registerRelease(gitHubUrl, delivery.spec)
console.log(
  `${fixture} ${version}${values.prerelease ? ' (pre-release)' : ''}: delivery ${delivery.deliveryId} → ${edgeUrl}/webhooks/github`
)
let res: Response
try {
  res = await postDelivery(edgeUrl, delivery, { signal: AbortSignal.timeout(15_000) })
} catch (error) {
  fail(`the edge did not answer: ${fetchFailure(error)}`)
}
const text = await res.text()
console.log(`HTTP ${res.status} ${res.statusText}`)
for (const name of ['x-request-id', 'retry-after'])
  if (res.headers.has(name)) console.log(`${name}: ${res.headers.get(name)}`)
console.log(text)
if (res.ok) {
  const discord = standIn('discord-stand-in')
  console.log(`\nThen: curl ${edgeUrl}/api/modules   (and ${edgeUrl}/modules/<id>/module.json)`)
  if (discord) console.log(`      curl ${discord}/_control/calls   (what Discord was sent)`)
}
process.exit(res.ok ? 0 : 1)
