/**
 * Two projects: `edge` runs inside workerd (@cloudflare/vitest-plugin, Miniflare) against a real
 * nats-server and real web services started by its global setup; `node` runs the backend, local
 * platform, stack and end-to-end tests in Node against real nats-server processes.
 */
import { defineConfig } from 'vitest/config'
import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { testOriginProof } from './test/support/origin-proof.ts'

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                DATACENTERS: inject('edgeDatacenters'),
                GITHUB_DELIVERIES: inject('githubDeliveries'),
                NATS_EDGE_SEED: inject('natsEdgeSeed'),
                IMAGE_ORIGIN: inject('imageOrigin'),
                IMAGE_SERVICE: inject('imageService'),
                SILENT_WEB: inject('silentWeb'),
                ALLOW_GEO_OVERRIDE: 'true',
                // The edge tests assert where distance sends a request; measured steering explores
                // other datacenters from a cold edge location. Its own tests set 'measured'
                // (test/edge/steering-mode.test.ts, latency.test.ts).
                STEERING_MODE: 'distance',
                // At least 43 characters, as the edge requires (32 random bytes).
                ADMIN_TOKEN: 'test-admin-token-0123456789abcdefghijklmnopqrstuvwxyz',
                PURGE_TOKEN: 'test-purge-token-0123456789abcdefghijklmnopqrstuvwxyz',
                // The proof the tests' web services require (test/support/origin-proof.ts).
                ...testOriginProof,
                // GitHub's documented test secret: the fixture deliveries are signed with it.
                GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
                UPSTREAM_TIMEOUT_MS: '2000',
                // Tests run the health vantages' alarms themselves (runDurableObjectAlarm): a long
                // interval keeps alarms firing on their own out of what a test counts.
                PROBE_INTERVAL_MS: '60000',
              },
              // Low enough for test/edge/image-abuse.test.ts to reach it (wrangler.toml's is for local runs).
              ratelimits: { IMAGE_RATE_LIMITER: { namespace_id: '1101', simple: { limit: 20, period: 60 } } },
            },
          })),
        ],
        test: {
          name: 'edge',
          include: ['test/edge/**/*.test.ts'],
          globalSetup: ['test/edge/global-setup.ts'],
        },
      },
      {
        test: {
          name: 'node',
          include: ['test/{backend,shared,local,stack,security,e2e}/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
})
