/**
 * `npm start`, `npm test` and `npm run bench` need real programs from the system: nats-server
 * (and, for the browser tests, chromium; for the monitoring tests, Prometheus's promtool and
 * Alertmanager's amtool; `npm start`'s monitoring runs those two and the node exporter). Install what is missing with apt when we can (root on Debian/Ubuntu);
 * otherwise stop with one line saying what to install. Never a fake. A requirement is met when
 * every command it lists is on the PATH.
 *   node local/ensure-packages.ts nats-server [chromium] [prometheus prometheus-alertmanager
 *     prometheus-node-exporter] [dockerd debootstrap docker-registry]
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { pathToFileURL } from 'node:url'

/** The commands each requirement provides, and the Debian package that provides them. */
export const requirements = {
  'nats-server': {
    commands: ['nats-server'],
    debian: 'nats-server',
    elsewhere: 'a nats-server 2.9+ binary on the PATH',
  },
  chromium: { commands: ['chromium'], debian: 'chromium', elsewhere: 'Chromium at /usr/bin/chromium' },
  // Monitoring (deploy/monitoring/): the server and `promtool`, Alertmanager and `amtool`.
  prometheus: {
    commands: ['prometheus', 'promtool'],
    debian: 'prometheus',
    elsewhere: 'Prometheus 2.42+ with promtool',
  },
  'prometheus-alertmanager': {
    commands: ['prometheus-alertmanager', 'amtool'],
    debian: 'prometheus-alertmanager',
    elsewhere: 'Alertmanager 0.25+ as `prometheus-alertmanager`, with amtool',
  },
  'prometheus-node-exporter': {
    commands: ['prometheus-node-exporter'],
    debian: 'prometheus-node-exporter',
    elsewhere: 'the node exporter 1.5+ as `prometheus-node-exporter`',
  },
  // `npm run swarm:up`: Docker Engines in network namespaces, a base system for the images, a registry.
  dockerd: { commands: ['dockerd'], debian: 'docker.io', elsewhere: 'Docker Engine 20.10+ (dockerd)' },
  debootstrap: { commands: ['debootstrap'], debian: 'debootstrap', elsewhere: 'debootstrap' },
  'docker-registry': {
    commands: ['docker-registry'],
    debian: 'docker-registry',
    elsewhere: 'the distribution registry 2.x as `docker-registry`',
  },
} as const satisfies Record<string, { commands: readonly string[]; debian: string; elsewhere: string }>
export type Requirement = keyof typeof requirements

export type Provisioning =
  { action: 'none' } | { action: 'install'; packages: string[] } | { action: 'fail'; message: string }

export const missingMessage = (missing: Requirement[]) =>
  `missing: ${missing.join(', ')}. Install (Debian/Ubuntu): \`sudo apt-get install -y ${missing.map((r) => requirements[r].debian).join(' ')}\`; elsewhere: ${missing.map((r) => requirements[r].elsewhere).join('; ')}.`

/** What to do, from what the machine has. */
export function provisioning(machine: {
  missing: Requirement[]
  isRoot: boolean
  hasApt: boolean
}): Provisioning {
  if (machine.missing.length === 0) return { action: 'none' }
  if (machine.isRoot && machine.hasApt)
    return { action: 'install', packages: machine.missing.map((r) => requirements[r].debian) }
  return { action: 'fail', message: missingMessage(machine.missing) }
}

const onPath = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0

/** The wanted requirements of which at least one command is not on the PATH. */
export const missingOf = (wanted: Requirement[], found: (command: string) => boolean = onPath) =>
  wanted.filter((r) => !requirements[r].commands.every(found))

function main(args: string[]): void {
  const unknown = args.filter((a) => !(a in requirements))
  if (unknown.length > 0) throw new Error(`unknown requirement: ${unknown.join(', ')}`)
  const wanted = args as Requirement[]
  const plan = provisioning({
    missing: missingOf(wanted),
    isRoot: process.getuid?.() === 0,
    hasApt: onPath('apt-get'),
  })
  if (plan.action === 'none') return
  if (plan.action === 'fail') {
    console.error(plan.message)
    process.exit(1)
  }
  console.error(`installing the Debian packages ${plan.packages.join(', ')} …`)
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
    execFileSync('apt-get', ['install', '-y', '-qq', ...plan.packages], { stdio: 'inherit', env })
  } catch {
    console.error(`\`apt-get install -y ${plan.packages.join(' ')}\` failed; install them and try again.`)
    process.exit(1)
  }
  const still = missingOf(wanted)
  if (still.length > 0) {
    console.error(missingMessage(still))
    process.exit(1)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.slice(2))
