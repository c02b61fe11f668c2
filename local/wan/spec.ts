/**
 * The WAN relay as a process spec of the local platform (`WAN=1 npm start`): started with the
 * stand-ins, before any datacenter, and ready once every relay address listens (GET /healthz on its
 * control port). It has no datacenter (`dc` null), so `swarm kill <dc>` leaves it alone. It is given the
 * edge locations the edge is given (EDGE_LOCATIONS), so each location's legs listen where the edge dials.
 */
import { join, resolve } from 'node:path'
import type { Catalogue } from '#shared/catalogue.ts'
import type { ProcessSpec } from '../processes.ts'
import { projectRoot } from '../platform-specs.ts'
import { defaultWanPorts } from './address.ts'

/** The relay's control API on 127.0.0.1 (beside the stand-ins' 8790, 8791). */
export const wanControlPort = 8793

export function wanSpec(
  catalogue: Catalogue,
  localDir: string,
  o: {
    /** The ports that cross datacenters (default defaultWanPorts). */
    ports?: readonly number[]
    /** Edge locations without a datacenter, in the order the edge is given them (default none). */
    edgeLocations?: readonly { id: string }[]
  } = {}
): { spec: ProcessSpec; readyPath: string } {
  return {
    readyPath: '/healthz',
    spec: {
      dc: null,
      service: 'wan',
      url: `http://127.0.0.1:${wanControlPort}`,
      command: process.execPath,
      args: [join(projectRoot, 'local', 'wan', 'serve.ts')],
      cwd: projectRoot,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        LANG: 'C.UTF-8',
        LOCAL_DIR: resolve(localDir),
        WAN_DATACENTERS: JSON.stringify(catalogue),
        WAN_EDGE_LOCATIONS: JSON.stringify((o.edgeLocations ?? []).map((l) => ({ id: l.id }))),
        WAN_PORTS: (o.ports ?? defaultWanPorts).join(','),
        WAN_CONTROL_PORT: String(wanControlPort),
      },
      logFile: join(localDir, 'logs', 'wan.log'),
    },
  }
}
