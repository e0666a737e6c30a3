#!/usr/bin/env node
// Runs a TypeScript file with tsx's loader registered (used by `npm run bench`).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const [file, ...rest] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: run-ts.mjs <file.ts> [args...]\n');
  process.exit(2);
}
process.argv = [process.argv[0], file, ...rest];
await import(pathToFileURL(resolve(file)).href);
