/**
 * The Dockerfile of the backend image: multi-stage, base images pinned to a version, production
 * dependencies only, a non-root user, a health check on the internal port, NODE_ENV=production, and the
 * exec form for ENTRYPOINT and CMD so that SIGTERM reaches node. Each problem reads
 * "Dockerfile: <instruction>: <detail>".
 *
 * Parsed by dockerfile-ast (the parser of the Docker language server): continuations, comments, flags such as
 * `RUN --mount` and `COPY --from`, JSON arrays and parser directives as BuildKit reads them. hadolint is in
 * neither Debian bookworm nor npm (the npm package `hadolint` is an unofficial wrapper that downloads the
 * binary from GitHub at run time).
 */
import { DockerfileParser, Env, From, Healthcheck, JSONInstruction, type Instruction } from 'dockerfile-ast'

/** The instructions of the last (runtime) stage: those after the last FROM. */
function runtimeStage(instructions: Instruction[]): Instruction[] {
  const lastFrom = instructions.findLastIndex((i) => i.getKeyword() === 'FROM')
  return instructions.slice(lastFrom + 1)
}

/** The last instruction of a stage with this keyword (the one that counts), if any. */
const lastOf = (stage: Instruction[], keyword: string): Instruction | undefined =>
  stage.filter((i) => i.getKeyword() === keyword).at(-1)

/**
 * The arguments, word by word and joined by a space, as BuildKit reads them: flags (`--interval=10s`,
 * `--mount=...`) and comment lines inside a continuation left out.
 */
const argumentsOf = (instruction: Instruction): string =>
  instruction
    .getArguments()
    .map((argument) => argument.getValue())
    .join(' ')

/** A JSON array (`["node", ...]`): the exec form, run without a shell. */
const isExecForm = (instruction: Instruction): instruction is JSONInstruction =>
  instruction instanceof JSONInstruction &&
  instruction.getOpeningBracket() !== null &&
  instruction.getClosingBracket() !== null

/** Problems of the Dockerfile, parsed instruction by instruction. */
export function dockerfileProblems(text: string): string[] {
  const instructions = DockerfileParser.parse(text).getInstructions()
  const problems: string[] = []
  const froms = instructions.filter((i) => i instanceof From)
  if (froms.length < 2) problems.push('Dockerfile: FROM: multi-stage build expected (deps and runtime)')

  const stages = new Set<string>()
  for (const from of froms) {
    const image = from.getImage() ?? ''
    if (!stages.has(image)) {
      const tag = from.getImageTag()
      if (!from.getImageDigest() && (!tag || tag === 'latest' || !/\d/.test(tag))) {
        problems.push(`Dockerfile: FROM: ${image} must be pinned to a version tag, not latest`)
      }
    }
    const alias = from.getBuildStage()
    if (alias) stages.add(alias)
  }

  if (!instructions.some((i) => i.getKeyword() === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(argumentsOf(i)))) {
    problems.push('Dockerfile: RUN: npm ci --omit=dev expected')
  }

  const runtime = runtimeStage(instructions)
  const user = lastOf(runtime, 'USER')
  if (!user || !argumentsOf(user) || /^(root|0)(:|$)/.test(argumentsOf(user)))
    problems.push('Dockerfile: USER: the runtime stage must run as a non-root user')
  const health = lastOf(runtime, 'HEALTHCHECK')
  if (!(health instanceof Healthcheck) || /^NONE$/i.test(health.getSubcommand()?.getValue() ?? ''))
    problems.push('Dockerfile: HEALTHCHECK: the runtime stage needs one')
  else if (!argumentsOf(health).includes('/readyz'))
    problems.push('Dockerfile: HEALTHCHECK: must probe /readyz')
  else if (!argumentsOf(health).includes('INTERNAL_HTTP_PORT'))
    problems.push('Dockerfile: HEALTHCHECK: must probe the internal port (INTERNAL_HTTP_PORT)')
  const setsProduction = (i: Instruction) =>
    i instanceof Env &&
    i.getProperties().some((p) => p.getName() === 'NODE_ENV' && p.getValue() === 'production')
  if (!runtime.some(setsProduction)) {
    problems.push('Dockerfile: ENV: NODE_ENV=production expected in the runtime stage')
  }
  // Signals: the exec form runs node (or an init) as the container's process; the shell form would make
  // /bin/sh PID 1, which does not forward SIGTERM, and Swarm would SIGKILL every task after its grace period.
  for (const keyword of ['ENTRYPOINT', 'CMD']) {
    const instruction = lastOf(runtime, keyword)
    if (instruction !== undefined && !isExecForm(instruction))
      problems.push(`Dockerfile: ${keyword}: must use the exec form (["node", ...]) so SIGTERM reaches node`)
  }
  const stopSignal = lastOf(runtime, 'STOPSIGNAL')
  if (stopSignal !== undefined && argumentsOf(stopSignal) !== 'SIGTERM')
    problems.push(`Dockerfile: STOPSIGNAL: the runtime drains on SIGTERM, not ${argumentsOf(stopSignal)}`)
  return problems
}

/** The runtime stage's ENTRYPOINT + CMD in exec form, e.g. ["node", "backend/web/service.ts"]. */
export function dockerCommand(text: string): string[] {
  const runtime = runtimeStage(DockerfileParser.parse(text).getInstructions())
  const execForm = (keyword: string): string[] => {
    const instruction = lastOf(runtime, keyword)
    return instruction && isExecForm(instruction)
      ? instruction.getJSONStrings().map((s) => s.getJSONValue())
      : []
  }
  return [...execForm('ENTRYPOINT'), ...execForm('CMD')]
}
