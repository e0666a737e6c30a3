#!/usr/bin/env node
// Builds the published package into dist/ (run by `npm run build`, and by npm itself before
// `npm pack` and `npm publish`, through the `prepare` script): tsc compiles lib/ and cdk/ to
// JavaScript and .d.ts files (tsconfig.build.json), then the files tsc does not compile but the
// package needs at run time (lib/local/workerThreadEntry.mjs, templates, data files) are copied next to them.
// The repository itself runs from the sources and never needs dist/.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');
const compiledDirs = ['lib', 'cdk'];

/** Files tsc leaves alone: anything but TypeScript (entry points in JavaScript, templates, data). */
function isRuntimeAsset(name) {
  return !name.endsWith('.ts');
}

function* assets(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* assets(path);
    else if (isRuntimeAsset(entry.name)) yield path;
  }
}

// A stale dist/ could hold the output of a source file deleted since.
rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
for (const dir of compiledDirs) {
  for (const file of assets(join(root, dir))) cpSync(file, join(out, relative(root, file)));
}
