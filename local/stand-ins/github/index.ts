/**
 * The GitHub stand-in's public face: what tests, benchmarks and the local platform import. One job
 * per file beside it:
 *   fixtures.ts    the fixture modules, GitHub's test secret, the octokit example delivery
 *   spec.ts        a release spec (zod), release and asset ids, the module.json a release serves
 *   zips.ts        the release zip (fflate), hostile kinds included; zip-bytes.ts: a lying size
 *   assets.ts      the assets' bytes, built once per spec
 *   payloads.ts    GitHub's JSON shapes (release, asset, repository, installation, errors)
 *   delivery.ts    a signed `release` webhook delivery
 *   app.ts         the GitHub App: installations, App JWTs, installation tokens
 *   rate-limit.ts  GitHub's rate-limit headers and a rate-limited window
 *   server.ts      the HTTP stand-in (`startGitHubStandIn`)
 *   client.ts      registering a release and posting a delivery from another process
 */
export { generateAppPrivateKey, installationIdFor, STAND_IN_APP_ID } from './app.ts'
export { postDelivery, registerRelease } from './client.ts'
export { releaseDelivery, type Delivery, type DeliveryOptions } from './delivery.ts'
export { fixtureModules, fixtureNames, GITHUB_TEST_SECRET, type FixtureName } from './fixtures.ts'
export { releaseJson } from './payloads.ts'
export { startGitHubStandIn, type GitHubStandIn, type GitHubStandInOptions } from './server.ts'
export {
  releaseIdFor,
  releaseManifest,
  releaseSpecSchema,
  zipKinds,
  zipObjectPath,
  type ReleaseSpec,
  type ReleaseSpecInput,
} from './spec.ts'
export { releaseZip } from './zips.ts'
