#!/usr/bin/env node
// The `sluice` command. In the repository it runs the TypeScript sources through tsx; an installed
// package ships no sources, only their compiled JavaScript in dist/. Sources win when both are
// there (a repository that has run `npm pack` has a dist/ too, possibly older than the sources), so
// the command and the jobs it loads, which import `sluice` from the sources, share one engine.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = new URL('../lib/cli/main.ts', import.meta.url);
let main;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  // The repository's tsconfig maps `sluice` to the sources for the examples and tests that import
  // it by name, whatever the working directory (tsx would otherwise read the one found there).
  register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
  ({ main } = await import(source.href));
} else {
  ({ main } = await import('../dist/lib/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
