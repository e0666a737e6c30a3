#!/usr/bin/env node
// The `sluice` command. Job files are TypeScript, so tsx's loader is registered before anything
// else is imported.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
