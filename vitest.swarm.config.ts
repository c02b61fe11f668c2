/**
 * `npm run test:swarm`: the operator's drills on a real Docker Swarm on this machine (test/swarm/), one
 * file, one swarm, the drills in order. Needs root and Debian's docker.io, debootstrap, docker-registry.
 */
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    name: 'swarm',
    include: ['test/swarm/**/*.test.ts'],
    environment: 'node',
    testTimeout: 600_000,
    hookTimeout: 900_000,
    fileParallelism: false,
  },
})
