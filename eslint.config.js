// @ts-check
/**
 * The linter (`npm run lint`, part of `npm test`): typescript-eslint's type-checked rules over every
 * TypeScript file, each file checked against the tsconfig that owns it (the Node side, the Worker, the
 * Worker's tests). Formatting stays prettier's (`npm run format:check`). A rule is switched off only
 * with a comment saying why.
 *
 * typescript-eslint needs TypeScript's JavaScript API, which TypeScript 7 (native) no longer has:
 * `typescript` is TypeScript 6 for the tools, and `tsc` is TypeScript 7 (`@typescript/native`).
 */
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    // env.generated.d.ts is wrangler's output, checked against wrangler types by the tests instead.
    ignores: [
      'node_modules/',
      '.local/',
      '.wrangler/',
      'dist/',
      'test-output/',
      'test/fixtures/',
      '**/*.js',
      'edge/env.generated.d.ts',
    ],
  },
  {
    files: ['**/*.ts', '**/*.tsx'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        project: [
          './tsconfig.json',
          './edge/tsconfig.json',
          './test/edge/tsconfig.json',
          './edge/status/browser/tsconfig.json',
        ],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
    },
  }
)
