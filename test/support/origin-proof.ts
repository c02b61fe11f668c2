/**
 * The edge's proof to the datacenters' web services in tests (the Access service token pair): the
 * edge tests' Worker bindings (vitest.config.ts) and every test web service (backend-service.ts) use it.
 */
export const testOriginProof = {
  ORIGIN_CLIENT_ID: 'test-origin-client-id.access',
  ORIGIN_CLIENT_SECRET: 'test-origin-client-secret-0123456789abcdefghijklmnop',
} as const

/** The headers the edge sends. */
export const originProofHeaders = (
  proof: { ORIGIN_CLIENT_ID: string; ORIGIN_CLIENT_SECRET: string } = testOriginProof
) => ({
  'cf-access-client-id': proof.ORIGIN_CLIENT_ID,
  'cf-access-client-secret': proof.ORIGIN_CLIENT_SECRET,
})
