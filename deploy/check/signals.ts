/**
 * Graceful stop, the deploy files' part: Swarm sends SIGTERM (or the nats services' SIGUSR2) to PID 1, which
 * must be an init that forwards it: tini in the image (the Dockerfile's ENTRYPOINT), or `init: true` on every
 * node service of stack.yml. Each problem reads "stack.yml: <service>: signals: <detail>". (That the runtime handles
 * SIGTERM and every service runs under it is the code's part, proven by the tests.)
 */
import { dockerCommand } from './dockerfile.ts'
import { deployFiles } from './files.ts'
import { isNodeService } from './service.ts'
import type { Stack } from './stack-file.ts'

export function initProblems(dockerfileText: string, stack: Stack): string[] {
  const problems: string[] = []
  const command = dockerCommand(dockerfileText)
  const imageHasInit = /(^|\/)(tini|dumb-init)$/.test(command[0] ?? '')
  if (!imageHasInit) {
    for (const [name, svc] of Object.entries(stack.services)) {
      if (isNodeService(name) && svc.init !== true)
        problems.push(
          `${deployFiles.stack}: ${name}: signals: the image has no tini, so the service needs init: true`
        )
    }
  }
  return problems
}
