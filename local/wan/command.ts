/**
 * `npm run swarm -- partition <dc|region|edge location> [from <...>]` and `heal` (local/swarm.ts): cut
 * links of the emulated WAN, or heal them all, on the running platform.
 *
 * The datacenters, their regions and the edge locations are the relay's (GET /state on the `wan`
 * process of state.json): those the running platform was started with, whatever DATACENTERS_FILE says
 * now. The new cuts are built on the relay's current ones (its last good state, even when cuts.json was
 * broken by hand), written to `<LOCAL_DIR>/wan/cuts.json`, and the command returns once the relay
 * applies them, with what is now cut.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { fetchFailure } from '#shared/error-message.ts'
import type { StateFile } from '../state.ts'
import { addPartition, cutSchema, cutsPath, describeCuts, writeCutsFile, type Cut } from './cuts.ts'

export const wanUsage = 'partition <dc|region|edge location> [from <dc|region|edge location>] | heal'

const relayStateSchema = z.object({
  datacenters: z.array(z.object({ id: z.string(), region: z.string().optional() })),
  edgeLocations: z.array(z.string()),
  cuts: z.array(cutSchema),
})

async function relayState(url: string): Promise<z.infer<typeof relayStateSchema>> {
  let res: Response
  try {
    res = await fetch(`${url}/state`, { signal: AbortSignal.timeout(5_000) })
  } catch (error) {
    throw new Error(`the WAN relay at ${url} does not answer: ${fetchFailure(error)}`)
  }
  if (!res.ok) throw new Error(`the WAN relay at ${url}/state answered HTTP ${res.status}`)
  return relayStateSchema.parse(await res.json())
}

/** Runs `partition ...` or `heal` (args without the command); returns the lines to print. */
export async function wanCommand(
  state: StateFile,
  localDir: string,
  command: 'partition' | 'heal',
  args: readonly string[]
): Promise<string[]> {
  const [name, from, fromName, ...rest] = args
  if (
    command === 'heal'
      ? args.length > 0
      : !name || (from !== undefined && (from !== 'from' || !fromName)) || rest.length > 0
  )
    throw new Error(`usage: npm run swarm -- ${wanUsage}`)
  const relay = state.processes.find((p) => p.service === 'wan')
  if (!relay) throw new Error('the WAN is off: start the platform with `WAN=1 npm start`')
  const current = await relayState(relay.url)
  const cuts: Cut[] =
    command === 'heal'
      ? []
      : addPartition(current.cuts, current.datacenters, name!, fromName, current.edgeLocations)
  writeCutsFile(cutsPath(localDir), cuts)
  // The relay sees the file within a second (fs.watch, else its re-read): report what it applied.
  const wanted = JSON.stringify(cuts)
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await sleep(100)) {
    const applied = await relayState(relay.url)
    if (JSON.stringify(applied.cuts) === wanted)
      return [
        command === 'heal'
          ? 'healed every link'
          : `partitioned ${name}${fromName ? ` from ${fromName}` : ''}`,
        'now cut:',
        ...describeCuts(applied.cuts).map((line) => `  ${line}`),
      ]
  }
  throw new Error(`the WAN relay did not apply ${cutsPath(localDir)} within 5 s: see its log (logs/wan.log)`)
}
