import { defineConfig } from 'vitest/config';

// Two projects: fast in-process tests run in parallel; system tests spawn
// real server processes, mount tmpfs and start nginx/Swift, so they run one
// file at a time.
export default defineConfig({
  test: {
    // One temp dir per run, removed at its end (test/global-tmpdir.ts).
    globalSetup: ['test/global-tmpdir.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/index/**/*.test.ts', 'test/storage/**/*.test.ts', 'test/http/**/*.test.ts', 'test/fuzz/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        // The HTTP suites again, on the memory engine (test/helpers/test-node.ts
        // reads the variable): what they prove does not depend on a disk layout.
        // Assertions about paths on disk run in the fs pass only.
        test: {
          name: 'http-memory',
          include: ['test/http/**/*.test.ts'],
          env: { NANOCDN_TEST_ENGINE: 'memory' },
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'system',
          include: ['test/system/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
