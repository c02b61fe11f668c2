/**
 * `npm start` and `npm test` need a real nats-server on the PATH. Install it with apt when we can
 * (root on Debian/Ubuntu); otherwise stop with one line saying what to install. Never a fake.
 */
import { execFileSync, spawnSync } from 'node:child_process'

const onPath = (command: string) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0

if (!onPath('nats-server')) {
  const isRoot = process.getuid?.() === 0
  if (isRoot && onPath('apt-get')) {
    console.error('nats-server not found on the PATH; installing the Debian package nats-server …')
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' })
      execFileSync('apt-get', ['install', '-y', '-qq', 'nats-server'], {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      })
    } catch {
      console.error('nats-server: `apt-get install -y nats-server` failed; install it and try again.')
      process.exit(1)
    }
  }
  if (!onPath('nats-server')) {
    console.error(
      'nats-server is missing: install it (Debian/Ubuntu: `sudo apt-get install -y nats-server`; elsewhere: a nats-server 2.9+ binary on the PATH).'
    )
    process.exit(1)
  }
}
