/**
 * `npm run check:deploy [-- <checkout>]`: the deploy checks, run by the operator before `docker stack deploy`,
 * in the deploy shell (docs/operations.md, "Deploy the stack"): with its variables exported (VTTA_VERSION,
 * GITHUB_APP_ID, ...), stack.yml is checked as the deploy will resolve it. <checkout> defaults to this one.
 *
 *   exit 0   no problem; one line says what was checked
 *   exit 1   one line per problem, each starting with the file to fix, then a count
 *   exit 2   usage
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { deployFiles } from './files.ts'
import { natsDatacenters } from './service.ts'
import { deployProblems, readDeployFiles } from './index.ts'

const usage = 'usage: npm run check:deploy [-- <checkout>]   (default: this checkout)'

export function main(args: string[], env: Record<string, string | undefined>): number {
  if (args.includes('-h') || args.includes('--help')) {
    console.log(usage)
    return 0
  }
  if (args.length > 1 || args.some((arg) => arg.startsWith('-'))) {
    console.error(`check:deploy: ${args.join(' ')} is not a checkout directory\n${usage}`)
    return 2
  }
  const dir = resolve(args[0] ?? fileURLToPath(new URL('../../', import.meta.url)))
  const { files, problems: unread } = readDeployFiles(dir, env)
  const problems = [...unread, ...deployProblems(files)]
  if (problems.length > 0) {
    for (const problem of problems) console.log(problem)
    const inFiles = [...new Set(problems.map((p) => p.slice(0, p.indexOf(':'))))]
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`
    console.log(
      `check:deploy: ${count} in ${inFiles.join(', ')}; fix ${problems.length === 1 ? 'it' : 'them'} ` +
        'before docker stack deploy'
    )
    return 1
  }
  const services = Object.keys(files.stack?.services ?? {}).length
  const datacenters = files.stack ? natsDatacenters(files.stack).join(', ') : ''
  console.log(
    `check:deploy: no problems in ${Object.values(deployFiles).join(', ')} ` +
      `(${services} services over ${datacenters}; VTTA_VERSION ${env.VTTA_VERSION ?? 'unset'})`
  )
  return 0
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2), process.env)
