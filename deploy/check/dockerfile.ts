/**
 * The Dockerfile of the backend image: multi-stage, base images pinned to a version, production
 * dependencies only, a non-root user, a health check on the internal port, NODE_ENV=production, and the
 * exec form for ENTRYPOINT and CMD so that SIGTERM reaches node. Each problem reads
 * "Dockerfile: <instruction>: <detail>".
 *
 * hadolint is in neither Debian bookworm nor npm (the npm package `hadolint` is an unofficial wrapper that
 * downloads the binary from GitHub at run time), so the Dockerfile is checked by parsing it here.
 */

type Instruction = { keyword: string; args: string }

/** The Dockerfile's instructions (continuations joined, comments dropped). */
const dockerInstructions = (text: string): Instruction[] =>
  text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/)
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') }
    })

/** The instructions of the last (runtime) stage. */
function runtimeStage(instructions: Instruction[]): Instruction[] {
  const lastFrom = instructions.findLastIndex((i) => i.keyword === 'FROM')
  return instructions.slice(lastFrom + 1)
}

/** Problems of the Dockerfile, parsed instruction by instruction. */
export function dockerfileProblems(text: string): string[] {
  const instructions = dockerInstructions(text)
  const problems: string[] = []
  const froms = instructions.filter((i) => i.keyword === 'FROM')
  if (froms.length < 2) problems.push('Dockerfile: FROM: multi-stage build expected (deps and runtime)')

  const stages = new Set<string>()
  for (const from of froms) {
    const [image = '', , alias] = from.args.split(/\s+/).filter((a) => !a.startsWith('--'))
    if (!stages.has(image)) {
      const tag = /^[^@]+?:([\w][\w.-]*)(@sha256:[a-f0-9]{64})?$/.exec(image)?.[1]
      if (!/@sha256:/.test(image) && (!tag || tag === 'latest' || !/\d/.test(tag))) {
        problems.push(`Dockerfile: FROM: ${image} must be pinned to a version tag, not latest`)
      }
    }
    if (alias) stages.add(alias)
  }

  if (!instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.args))) {
    problems.push('Dockerfile: RUN: npm ci --omit=dev expected')
  }

  const runtime = runtimeStage(instructions)
  const user = runtime.filter((i) => i.keyword === 'USER').at(-1)?.args
  if (!user || /^(root|0)(:|$)/.test(user))
    problems.push('Dockerfile: USER: the runtime stage must run as a non-root user')
  const health = runtime.filter((i) => i.keyword === 'HEALTHCHECK').at(-1)?.args
  if (!health || /^NONE$/i.test(health)) problems.push('Dockerfile: HEALTHCHECK: the runtime stage needs one')
  else if (!health.includes('/readyz')) problems.push('Dockerfile: HEALTHCHECK: must probe /readyz')
  else if (!health.includes('INTERNAL_HTTP_PORT'))
    problems.push('Dockerfile: HEALTHCHECK: must probe the internal port (INTERNAL_HTTP_PORT)')
  if (!runtime.some((i) => i.keyword === 'ENV' && /\bNODE_ENV=production\b/.test(i.args))) {
    problems.push('Dockerfile: ENV: NODE_ENV=production expected in the runtime stage')
  }
  // Signals: the exec form runs node (or an init) as the container's process; the shell form would make
  // /bin/sh PID 1, which does not forward SIGTERM, and Swarm would SIGKILL every task after its grace period.
  for (const keyword of ['ENTRYPOINT', 'CMD']) {
    const args = runtime.filter((i) => i.keyword === keyword).at(-1)?.args
    if (args !== undefined && !/^\[.*\]$/.test(args))
      problems.push(`Dockerfile: ${keyword}: must use the exec form (["node", ...]) so SIGTERM reaches node`)
  }
  const stopSignal = runtime.filter((i) => i.keyword === 'STOPSIGNAL').at(-1)?.args
  if (stopSignal !== undefined && stopSignal !== 'SIGTERM')
    problems.push(`Dockerfile: STOPSIGNAL: the runtime drains on SIGTERM, not ${stopSignal}`)
  return problems
}

/** The runtime stage's ENTRYPOINT + CMD in exec form, e.g. ["node", "backend/web/service.ts"]. */
export function dockerCommand(text: string): string[] {
  const runtime = runtimeStage(dockerInstructions(text))
  const execForm = (keyword: string): string[] => {
    const args = runtime.filter((i) => i.keyword === keyword).at(-1)?.args
    try {
      return args ? (JSON.parse(args) as string[]) : []
    } catch {
      return []
    }
  }
  return [...execForm('ENTRYPOINT'), ...execForm('CMD')]
}
