/**
 * `npm start` and `npm test` need a real nats-server on the PATH. Install it with apt when we can
 * (root on Debian/Ubuntu); otherwise stop with one line saying what to install. Never a fake.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { pathToFileURL } from 'node:url'

export type Provisioning = { action: 'none' } | { action: 'install' } | { action: 'fail'; message: string }

export const missingMessage =
  'nats-server is missing: install it (Debian/Ubuntu: `sudo apt-get install -y nats-server`; elsewhere: a nats-server 2.9+ binary on the PATH).'

/** What to do, from what the machine has. */
export function provisioning(machine: {
  hasNatsServer: boolean
  isRoot: boolean
  hasApt: boolean
}): Provisioning {
  if (machine.hasNatsServer) return { action: 'none' }
  if (machine.isRoot && machine.hasApt) return { action: 'install' }
  return { action: 'fail', message: missingMessage }
}

const onPath = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0

function main(): void {
  const plan = provisioning({
    hasNatsServer: onPath('nats-server'),
    isRoot: process.getuid?.() === 0,
    hasApt: onPath('apt-get'),
  })
  if (plan.action === 'none') return
  if (plan.action === 'fail') {
    console.error(plan.message)
    process.exit(1)
  }
  console.error('nats-server not found on the PATH; installing the Debian package nats-server …')
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
    execFileSync('apt-get', ['install', '-y', '-qq', 'nats-server'], { stdio: 'inherit', env })
  } catch {
    console.error('nats-server: `apt-get install -y nats-server` failed; install it and try again.')
    process.exit(1)
  }
  if (!onPath('nats-server')) {
    console.error(missingMessage)
    process.exit(1)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main()
