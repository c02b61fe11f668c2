/**
 * `npm start` enrols the repositories the GitHub stand-in serves the fixture modules from (as the
 * operator would with `npm run swarm -- enroll <owner/repo>`), so the local platform publishes out of
 * the box. Any other repository stays unenrolled and is refused (`repository_not_enrolled`).
 */
import { readFileSync } from 'node:fs'
import { GitHubApp } from '../backend/releases/github-api.ts'
import type { LocalGitHubApp } from './github-app.ts'
import { connectOperatorNats } from './operator-nats.ts'
import { enrollRepository } from './registry-commands.ts'
import type { StateFile } from './state.ts'
import { fixtureModules } from './stand-ins/github/index.ts'

export function operatorGitHubApp(apiUrl: string, app: LocalGitHubApp): GitHubApp {
  return new GitHubApp({
    apiUrl,
    appId: Number(app.GITHUB_APP_ID),
    privateKey: readFileSync(app.GITHUB_APP_PRIVATE_KEY_FILE, 'utf8'),
    timeoutMs: 10_000,
  })
}

export async function enrollFixtureRepositories(
  state: StateFile,
  localDir: string,
  gitHubUrl: string,
  app: LocalGitHubApp
): Promise<void> {
  const nc = await connectOperatorNats(state, localDir)
  try {
    const ctx = { nc, github: operatorGitHubApp(gitHubUrl, app), by: 'npm start (fixture repositories)' }
    for (const m of Object.values(fixtureModules))
      await enrollRepository(ctx, `${m.owner}/${m.repo}`, { quiet: true })
  } finally {
    await nc.close()
  }
}
