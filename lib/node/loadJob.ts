import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { JobDefinitionError } from '../core/errors.ts';
import { isJobDefinition, type JobDefinition } from '../api/job.ts';

/**
 * Whether this is the published package's compiled JavaScript. The repository's TypeScript sources
 * only ever run under a TypeScript loader already (tsx, registered by bin/sluice.mjs, bin/run-ts.mjs
 * and the worker thread entry; or vitest), which loads job files too.
 */
const COMPILED = import.meta.url.endsWith('.js');

let esmLoader: Promise<void> | undefined;
let cjsLoader: Promise<void> | undefined;

// The tsx APIs are named through variables so that bundlers leave them out: the Lambda bundle
// reaches this module (lib/aws/runtime.ts), but its job is bundled in, and tsx's esbuild could not be.
const TSX_ESM_API = 'tsx/esm/api';
const TSX_CJS_API = 'tsx/cjs/api';

const nodeRequire = createRequire(import.meta.url);

/** Registers tsx's ES module loader, once per thread, for TypeScript job files that are ES modules. */
function registerEsmLoader(): Promise<void> {
  esmLoader ??= (async () => {
    const tsx = (await import(TSX_ESM_API)) as typeof import('tsx/esm/api');
    tsx.register();
  })();
  return esmLoader;
}

/**
 * Registers tsx's CommonJS hook, once per thread, for job files that are CommonJS (`.cts`, or `.ts`
 * in a project whose package.json has no `"type": "module"`). That hook compiles every ES module
 * `require`d after it to CommonJS, `sluice` too: a second copy of the engine, whose classes fail the
 * first copy's `instanceof` checks (a job's StateSpec would not be one to `mapWithState`). So the
 * package's entry points are required first, by Node itself: they are then in the require cache
 * as the very ES module instances the command runs (require(esm)), and the job's `require` gets those.
 */
function registerCjsLoader(): Promise<void> {
  cjsLoader ??= (async () => {
    if (COMPILED) for (const entry of ['sluice', 'sluice/testing']) nodeRequire(entry);
    const tsx = (await import(TSX_CJS_API)) as typeof import('tsx/cjs/api');
    tsx.register();
  })();
  return cjsLoader;
}

/** Whether Node and TypeScript treat a `.ts` file as CommonJS: the nearest package.json has no `"type": "module"`. */
function inCommonJsScope(path: string): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        return (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: unknown }).type !== 'module';
      } catch {
        return true;
      }
    }
    if (dirname(dir) === dir) return true;
  }
}

/**
 * Loads a job file as the module format Node and TypeScript give it, with tsx compiling what Node
 * cannot run by itself: TypeScript, and `import`/`export` in a `.js` file of a CommonJS project
 * (which Node 20 would refuse). The repository's sources already run under a TypeScript loader
 * (bin/sluice.mjs, bin/run-ts.mjs, the worker thread entry, vitest); the compiled package registers
 * tsx here, on the first job file that needs it.
 */
async function importJobModule(path: string): Promise<Record<string, unknown>> {
  const ext = extname(path);
  const commonJs = ext === '.cts' || ext === '.cjs' || ((ext === '.ts' || ext === '.js') && inCommonJsScope(path));
  if (commonJs) {
    await registerCjsLoader();
    // What import() would give: the CommonJS exports as the default.
    return { default: nodeRequire(path) as unknown };
  }
  if (COMPILED && (ext === '.ts' || ext === '.mts')) await registerEsmLoader();
  return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
}

/**
 * The job a module exports as its default. A job compiled to CommonJS exports it as
 * `exports.default` (with `__esModule`), which `import()` hands over as `default.default`.
 */
function defaultExport(mod: Record<string, unknown>): unknown {
  const exported = mod.default;
  if (isJobDefinition(exported)) return exported;
  const wrapped = exported as { __esModule?: unknown; default?: unknown } | null | undefined;
  return wrapped?.__esModule ? wrapped.default : exported;
}

/**
 * Imports a job file and returns its default export, checked to be a {@link defineJob} result.
 * TypeScript and JavaScript files load alike, as ES modules or CommonJS, whatever the project's
 * package.json says; the job's `sluice` is the same module instance as the caller's (one copy of
 * the engine, so its `instanceof` checks hold across the job and the command running it).
 *
 * @example
 * ```ts
 * const job = await loadJob('examples/wordcount.ts');
 * ```
 */
export async function loadJob(file: string): Promise<JobDefinition> {
  const path = resolve(file);
  if (!existsSync(path)) throw new JobDefinitionError(`job file ${file} does not exist`);
  let mod: Record<string, unknown>;
  try {
    mod = await importJobModule(path);
  } catch (e) {
    if (e instanceof JobDefinitionError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new JobDefinitionError(`job file ${file} failed to load: ${msg}`, { cause: e });
  }
  const job = defaultExport(mod);
  if (!isJobDefinition(job)) {
    throw new JobDefinitionError(
      `job file ${file} must export a job as its default export: export default defineJob({ name, batchInterval }, (ctx) => { ... })`,
    );
  }
  return job;
}
