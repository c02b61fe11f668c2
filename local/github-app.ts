/**
 * The local platform's GitHub App: its private key is generated on first start under
 * `<localDir>/github-app/private-key.pem` (never in git), and the GitHub stand-in and every release
 * service are given it (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_FILE). Set both variables to use
 * another App (the stand-in then verifies that App's JWTs).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { generateAppPrivateKey, STAND_IN_APP_ID } from './stand-ins/github/index.ts'

export interface LocalGitHubApp {
  GITHUB_APP_ID: string
  GITHUB_APP_PRIVATE_KEY_FILE: string
}

export function ensureLocalGitHubApp(localDir: string, env: NodeJS.ProcessEnv = process.env): LocalGitHubApp {
  if (env.GITHUB_APP_ID && env.GITHUB_APP_PRIVATE_KEY_FILE)
    return {
      GITHUB_APP_ID: env.GITHUB_APP_ID,
      GITHUB_APP_PRIVATE_KEY_FILE: resolve(env.GITHUB_APP_PRIVATE_KEY_FILE),
    }
  const dir = resolve(localDir, 'github-app')
  const file = join(dir, 'private-key.pem')
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    writeFileSync(file, generateAppPrivateKey(), { mode: 0o600 })
  }
  return { GITHUB_APP_ID: String(STAND_IN_APP_ID), GITHUB_APP_PRIVATE_KEY_FILE: file }
}
