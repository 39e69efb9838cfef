import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The repository root: the top-level layout is fixed, so this file lives in test/.
  root: fileURLToPath(new URL('..', import.meta.url)),
  // graphql@16 has no exports map: Node (and so Pothos and yoga) load its CommonJS build while
  // Vite would resolve our sources to the ESM one, and graphql refuses types from another copy.
  // Point everything at the copy Node loads.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
