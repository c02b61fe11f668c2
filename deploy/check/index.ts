/**
 * Every deploy check over the files `docker stack deploy` and `docker build` read: stack.yml (resolved with
 * the deploy shell's variables), deploy/nats.conf, deploy/datacenters.production.json, the Dockerfile and
 * .dockerignore. One list of problems, empty when the files are fit to deploy.
 */
import { catalogueProblems, datacenterProblems } from './catalogue.ts'
import { dockerfileProblems } from './dockerfile.ts'
import { dockerignoreProblems } from './dockerignore.ts'
import { natsConfProblems } from './nats-conf.ts'
import { initProblems } from './signals.ts'
import { stackProblems } from './stack.ts'
import type { Stack } from './stack-file.ts'

export interface DeployFiles {
  /** stack.yml, parsed, interpolated and validated (loadStack). */
  stack: Stack
  natsConf: string
  /** deploy/datacenters.production.json, parsed JSON (validated by the checks). */
  catalogue: unknown
  dockerfile: string
  /** undefined when there is no .dockerignore. */
  dockerignore: string | undefined
}

export function deployProblems(files: DeployFiles): string[] {
  return [
    ...datacenterProblems(files.stack, files.catalogue),
    ...catalogueProblems(files.catalogue),
    ...natsConfProblems(files.natsConf),
    ...stackProblems(files.stack, files.natsConf),
    ...dockerfileProblems(files.dockerfile),
    ...initProblems(files.dockerfile, files.stack),
    ...dockerignoreProblems(files.dockerignore),
  ]
}
