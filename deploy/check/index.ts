/**
 * Every deploy check over the files `docker stack deploy` and `docker build` read (files.ts): stack.yml
 * (resolved with the deploy shell's variables), deploy/nats.conf, deploy/datacenters.production.json, the
 * Dockerfile and .dockerignore; across them, the NATS topology of the regions (catalogue.ts), where
 * JetStream keeps what (jetstream.ts) and where the spread services run (spread.ts). One list of problems, each starting with the file to fix; empty when the
 * files are fit to deploy. A file that is missing or does not parse is a problem too, and the checks that
 * need it are left out (their problems would only repeat it).
 */
import { errorMessage } from '#shared/error-message.ts'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { catalogueProblems, datacenterProblems } from './catalogue.ts'
import { dockerfileProblems } from './dockerfile.ts'
import { dockerignoreProblems } from './dockerignore.ts'
import { deployFiles } from './files.ts'
import { natsConfProblems } from './nats-conf.ts'
import { jetStreamProblems } from './jetstream.ts'
import { spreadProblems } from './spread.ts'
import { initProblems } from './signals.ts'
import { stackProblems } from './stack.ts'
import { loadStack, StackFileError, type Stack } from './stack-file.ts'

export interface DeployFiles {
  /** stack.yml, parsed, interpolated and validated (loadStack); undefined when it could not be. */
  stack: Stack | undefined
  natsConf: string | undefined
  /** deploy/datacenters.production.json, parsed JSON (validated by the checks); undefined when absent. */
  catalogue: unknown
  dockerfile: string | undefined
  /** undefined when there is no .dockerignore (a problem the checks name). */
  dockerignore: string | undefined
}

export function deployProblems({
  stack,
  natsConf,
  catalogue,
  dockerfile,
  dockerignore,
}: DeployFiles): string[] {
  return [
    ...(stack && catalogue !== undefined ? datacenterProblems(stack, catalogue) : []),
    ...(catalogue !== undefined ? catalogueProblems(catalogue) : []),
    ...(stack && catalogue !== undefined ? jetStreamProblems(stack, catalogue) : []),
    ...(stack && catalogue !== undefined ? spreadProblems(stack, catalogue) : []),
    ...(natsConf !== undefined ? natsConfProblems(natsConf) : []),
    ...(stack && natsConf !== undefined ? stackProblems(stack, natsConf, catalogue) : []),
    ...(dockerfile !== undefined ? dockerfileProblems(dockerfile) : []),
    ...(stack && dockerfile !== undefined ? initProblems(dockerfile, stack) : []),
    ...dockerignoreProblems(dockerignore),
  ]
}

/**
 * Reads the deploy files of a checkout, stack.yml interpolated with `env` (the deploy shell's variables, as
 * `docker stack deploy` will). `problems` are the files that are missing or do not parse.
 */
export function readDeployFiles(
  dir: string,
  env: Record<string, string | undefined>
): { files: DeployFiles; problems: string[] } {
  const problems: string[] = []
  const read = (path: string, required = true): string | undefined => {
    if (existsSync(join(dir, path))) return readFileSync(join(dir, path), 'utf8')
    if (required) problems.push(`${path}: missing`)
    return undefined
  }

  const stackText = read(deployFiles.stack)
  let stack: Stack | undefined
  if (stackText !== undefined) {
    try {
      stack = loadStack(stackText, env)
    } catch (error) {
      // A required variable without a value (as docker reports it), YAML syntax, or fields of the wrong kind.
      const issues = error instanceof StackFileError ? error.issues : [errorMessage(error)]
      problems.push(...issues.map((issue) => `${deployFiles.stack}: ${issue}`))
    }
  }

  const catalogueText = read(deployFiles.catalogue)
  let catalogue: unknown
  if (catalogueText !== undefined) {
    try {
      catalogue = JSON.parse(catalogueText)
    } catch (error) {
      problems.push(`${deployFiles.catalogue}: not JSON: ${errorMessage(error)}`)
    }
  }

  const files: DeployFiles = {
    stack,
    natsConf: read(deployFiles.natsConf),
    catalogue,
    dockerfile: read(deployFiles.dockerfile),
    dockerignore: read(deployFiles.dockerignore, false),
  }
  return { files, problems }
}
