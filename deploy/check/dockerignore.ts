/**
 * .dockerignore, the backend image's build context: present, keeps local and generated files out, lets the
 * image's sources in. Each problem reads ".dockerignore: <detail>".
 */

/** Problems of .dockerignore: present, keeps local and generated files out, lets the image's sources in. */
export function dockerignoreProblems(text: string | undefined): string[] {
  if (text === undefined)
    return ['.dockerignore: missing (the whole directory, .git included, would be sent)']
  const problems: string[] = []
  const lines = text.split(/\r?\n/).map((l) => l.trim())
  for (const entry of ['node_modules', '.local', '.wrangler', '.git', '*.log']) {
    if (!lines.some((l) => l === entry || l === `**/${entry}`))
      problems.push(`.dockerignore: must exclude ${entry} (as ${entry} or **/${entry})`)
  }
  for (const entry of ['test', 'bench', 'edge', 'docs']) {
    if (!lines.includes(entry)) problems.push(`.dockerignore: must exclude ${entry}`)
  }
  for (const needed of ['package.json', 'package-lock.json', 'shared', 'backend']) {
    if (lines.some((l) => l === needed || l === `${needed}/` || l === `**/${needed}`))
      problems.push(`.dockerignore: must not exclude ${needed} (the image needs it)`)
  }
  return problems
}
