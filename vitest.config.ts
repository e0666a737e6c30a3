import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^sluice\/testing$/, replacement: here('./lib/testing/index.ts') },
      { find: /^sluice$/, replacement: here('./lib/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'infra-test/**/*.test.ts'],
    testTimeout: 30_000,
    // Test files run side by side. vitest's default is one worker per core minus one, a single
    // worker on a two-core machine, while most files spend their time waiting on emulators,
    // child processes and batch intervals rather than computing.
    maxWorkers: Math.max(2, availableParallelism()),
    // s3rver hashes continuation tokens with an algorithm OpenSSL 3 only offers through its
    // legacy provider; without it, paged listings fail with InternalError.
    execArgv: ['--openssl-legacy-provider'],
    hookTimeout: 60_000,
    // expectTypeOf does nothing at run time: vitest also hands these files to tsc, and a type that
    // no longer matches fails its test in every vitest run, not only in `npm run lint`.
    typecheck: { enabled: true, include: ['test/**/types.test.ts'], tsconfig: './tsconfig.json' },
  },
});
