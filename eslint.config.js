// Lint for bugs, not style (formatting is left to review). typescript-eslint's
// type-aware recommended rules, plus the ones that catch real defects in async
// server code: a promise nobody awaits or handles (an unhandled rejection kills
// the process), a promise passed where a callback's result is ignored, a
// switch over a union that misses a member.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'data/', '.vitest-tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['vitest.config.ts', 'eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Methods are async to fit an interface (Storage, MetadataIndex) whose
      // other implementations do await; a sync body is not a bug.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests read supertest's `res.body` (typed any) and pass methods to
    // expect()/vi.spyOn(); the any-tracking rules would only add casts there.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  {
    // The status page's script (static/status.js) runs in a browser, as a classic script.
    files: ['static/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(['document', 'location', 'fetch', 'URLSearchParams', 'addEventListener', 'setInterval', 'setTimeout', 'clearTimeout']
        .map((name) => [name, 'readonly'])),
    },
  },
);
