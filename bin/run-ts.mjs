#!/usr/bin/env node
// Runs a TypeScript file with tsx's loader registered (`npm run bench`, `npm run sim`, and the
// SluiceJob construct, which runs cdk/describeJob.ts at synth time).
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * An installed package ships no TypeScript sources, only their compiled twins under dist/: a source
 * file of this package that is not there (`<root>/cdk/describeJob.ts`) runs as `<root>/dist/cdk/describeJob.js`.
 */
function runnable(file) {
  const path = resolve(file);
  if (existsSync(path)) return path;
  const inPackage = relative(root, path);
  if (inPackage.startsWith('..') || !inPackage.endsWith('.ts')) return path;
  const compiled = join(root, 'dist', inPackage.replace(/\.ts$/, '.js'));
  return existsSync(compiled) ? compiled : path;
}

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: run-ts.mjs <file.ts> [args...]\n');
  process.exit(2);
}
const path = runnable(file);
// Compiled JavaScript needs no loader: the package's own job loader registers one for job files.
// The repository's tsconfig maps `sluice` to the sources, whatever the working directory.
const tsconfig = join(root, 'tsconfig.json');
if (path.endsWith('.ts')) register(existsSync(tsconfig) ? { tsconfig } : {});
process.argv = [process.argv[0], file, ...rest];
await import(pathToFileURL(path).href);
