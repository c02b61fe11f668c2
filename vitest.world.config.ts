/**
 * `npm run test:world`: the six-datacenter world with the WAN on (test/world/), one platform for the
 * file, the proofs in order. It binds the local platform's fixed addresses, so it never runs beside
 * `npm test`'s end-to-end file or another `npm start`.
 */
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    name: 'world',
    include: ['test/world/**/*.test.ts'],
    environment: 'node',
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
})
