/** The local registry is up when its API answers. */
import { registryHost } from './topology.ts'

export async function waitForRegistry(timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (
      await fetch(`http://${registryHost}/v2/`).then(
        (r) => r.ok,
        () => false
      )
    )
      return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`the registry on ${registryHost} did not answer`)
}
