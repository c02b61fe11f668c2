/** The module test/support/seed-registry.ts packages into the edge tests' registry. */
export const seededModule = { id: 'edge-cache-test', version: '1.0.0', releaseId: 7001, zipBytes: 300_000 }
