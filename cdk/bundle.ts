import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync, type Metafile, type OutputFile } from 'esbuild';

/**
 * Whether this module is the published package's compiled JavaScript (`<root>/dist/cdk/bundle.js`)
 * rather than the repository's TypeScript source (`<root>/cdk/bundle.ts`).
 */
const COMPILED = import.meta.url.endsWith('.js');

/** The package root, holding package.json and bin/, in the repository and once installed. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), COMPILED ? '../..' : '..');

/**
 * The file that runs for a source file of this package, named by its path in the repository
 * (`lib/aws/lambda.ts`): the file itself in the repository, its compiled twin under dist/
 * (`dist/lib/aws/lambda.js`) in an installed package, which ships no TypeScript sources.
 *
 * @example
 * ```ts
 * const describeJob = packageFile('cdk/describeJob.ts');
 * ```
 */
export function packageFile(sourcePath: string): string {
  return COMPILED ? join(PACKAGE_ROOT, 'dist', sourcePath.replace(/\.ts$/, '.js')) : join(PACKAGE_ROOT, sourcePath);
}

/** The job's two functions. */
export type JobFunction = 'coordinator' | 'worker';

/** What each function's bundle is built from: the module that makes its handler, and the factory it calls. */
const HANDLERS: { readonly [F in JobFunction]: { readonly module: string; readonly factory: string } } = {
  coordinator: { module: 'lib/aws/coordinatorLambda.ts', factory: 'coordinatorHandler' },
  worker: { module: 'lib/aws/workerLambda.ts', factory: 'workerHandler' },
};

/**
 * One function's deployment bundle: the directory that is its Lambda asset, and what is in it.
 *
 * @example
 * ```ts
 * const { worker } = bundleJob('jobs/clicks.ts');
 * new lambda.Function(scope, 'Worker', { code: lambda.Code.fromAsset(worker.dir), handler: worker.handler, ... });
 * ```
 */
export interface FunctionBundle {
  /** The asset: `index.mjs`, the chunks it imports (`chunks/`), and a source map beside each file; nothing else. */
  readonly dir: string;
  /** The function's handler setting: `index.coordinator` or `index.worker`. */
  readonly handler: string;
  /** Bytes of JavaScript in `dir`, every chunk counted. */
  readonly bytes: number;
  /**
   * Bytes of JavaScript the function loads when it starts: `index.mjs` and the chunks it imports
   * statically. The rest is loaded on first use only (the SDK's credential providers for places
   * other than a Lambda's environment).
   */
  readonly loadedBytes: number;
  /** Bytes of source maps in `dir`. */
  readonly mapBytes: number;
  /**
   * Bytes of JavaScript per thing bundled (esbuild's metafile): per npm package
   * (`@aws-sdk/client-s3`), else per file, named relative to the package root (`lib/engine/worker.ts`).
   */
  readonly contents: Readonly<Record<string, number>>;
}

/** Both functions' bundles of a job. */
export type JobBundles = { readonly [F in JobFunction]: FunctionBundle };

/**
 * What may be changed in how both bundles are built (`SluiceJob`'s `bundling`); the rest (one ES
 * module per function, tree-shaken, split where only `import()` reaches, source maps beside) is
 * what the functions need.
 *
 * @example
 * ```ts
 * const bundling: BundlingOptions = { external: ['sharp'], define: { 'process.env.STAGE': '"prod"' }, sourcesContent: true };
 * ```
 */
export interface BundlingOptions {
  /**
   * Modules left out of the bundles, imported at run time instead. The bundles are ES modules,
   * which Node resolves from the function's own directory upwards and not through `NODE_PATH`: a
   * module of a Lambda layer (`/opt/nodejs/node_modules`) is not found by its bare name. @default none
   */
  readonly external?: readonly string[];
  /** Identifiers replaced by constant expressions, each a string of JavaScript: `{ 'process.env.STAGE': '"prod"' }`. @default none */
  readonly define?: { readonly [identifier: string]: string };
  /** Minify the code (names of classes and functions are kept either way). @default true */
  readonly minify?: boolean;
  /** Put the sources themselves in the source maps, so a stack trace can be read with its code (larger maps). @default false */
  readonly sourcesContent?: boolean;
}

const bundles = new Map<string, JobBundles>();

/**
 * Bundles a job file into its two Lambda functions' code, one bundle per function: esbuild in
 * this process, no Docker. Each bundle is an ES module, `index.mjs`, exporting one handler
 * (`coordinator` or `worker`), minified and tree-shaken from its own root module, so the worker's
 * holds neither the coordinator's protocol nor the DynamoDB and Lambda clients, which only the
 * coordinator calls. The job is imported statically, so the functions need no job file at run
 * time; `sluice` resolves to this package, so the job and the handler share one copy of the
 * engine. Source maps are written beside the code (`SluiceJob`'s `sourceMaps` loads them). Each
 * bundle's directory is named by its content's hash: the same job bundles to the same assets.
 *
 * @example
 * ```ts
 * const { coordinator, worker } = bundleJob('jobs/clicks.ts');
 * const handler = (await import(pathToFileURL(join(worker.dir, 'index.mjs')).href)).worker;
 * ```
 */
export function bundleJob(entry: string, options: BundlingOptions = {}): JobBundles {
  const file = resolve(entry);
  const key = JSON.stringify([file, options]);
  const known = bundles.get(key);
  if (known && existsSync(known.coordinator.dir) && existsSync(known.worker.dir)) return known;
  if (!existsSync(file)) throw new Error(`bundleJob: job file ${entry} does not exist (resolved to ${file})`);
  const made = { coordinator: bundleFunction(file, 'coordinator', options), worker: bundleFunction(file, 'worker', options) };
  bundles.set(key, made);
  return made;
}

/** Where esbuild is told the output goes (it writes nothing there): source map paths are relative to it, as they were to the single bundle's. */
const OUT = process.cwd();

function bundleFunction(file: string, fn: JobFunction, options: BundlingOptions): FunctionBundle {
  const { module, factory } = HANDLERS[fn];
  let out;
  try {
    out = buildSync({
      stdin: {
        contents: [
          `import job from ${JSON.stringify(file)};`,
          `import { ${factory} } from ${JSON.stringify(packageFile(module))};`,
          `export const ${fn} = ${factory}(async () => job);`,
        ].join('\n'),
        resolveDir: dirname(file),
        sourcefile: `sluice-${fn}.ts`,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      outdir: OUT,
      entryNames: 'index',
      // Code reached only through import() (the SDK's credential providers for SSO, profiles,
      // instance metadata…, unused on Lambda) goes to chunks loaded when first called.
      splitting: true,
      chunkNames: 'chunks/[name]-[hash]',
      outExtension: { '.js': '.mjs' },
      write: false,
      metafile: true,
      minify: options.minify ?? true,
      ...(options.external?.length ? { external: [...options.external] } : {}),
      ...(options.define ? { define: { ...options.define } } : {}),
      // Class and function names survive minification: the AWS SDK compares constructor names
      // (`NoOpLogger`, `FetchHttpHandler`), stack traces without source maps name functions, and
      // a user's errors may name themselves after their class (`this.name = this.constructor.name`).
      keepNames: true,
      sourcemap: 'linked',
      sourcesContent: options.sourcesContent ?? false,
      legalComments: 'none',
      // The AWS SDK's ES module builds, which esbuild can tree-shake statement by statement; by
      // default it takes their CommonJS builds (`main`) for Node, which it cannot.
      mainFields: ['module', 'main'],
      conditions: ['module'],
      // The job's `sluice` is this very copy of the package, whichever its node_modules would find.
      alias: { sluice: packageFile('lib/index.ts'), 'sluice/testing': packageFile('lib/testing/index.ts') },
      // Some dependencies are CommonJS and call require() on Node's built-ins.
      banner: { js: "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);" },
      logLevel: 'silent',
    });
  } catch (e) {
    throw new Error(`bundleJob: the ${fn} bundle of ${file} cannot be built: ${(e as Error).message}`, { cause: e });
  }
  const files = out.outputFiles.map((f) => ({ path: relative(OUT, f.path).split(sep).join('/'), file: f }));
  const code = files.filter((f) => !f.path.endsWith('.map'));
  const hash = createHash('sha256');
  // The options too: sourcesContent changes only the maps, which are not hashed.
  if (Object.keys(options).length > 0) hash.update(`${JSON.stringify(options)}\0`);
  for (const f of code) hash.update(`${f.path}\0`).update(f.file.contents);
  const dir = join(tmpdir(), `sluice-bundle-${hash.digest('hex').slice(0, 16)}`);
  if (!existsSync(dir)) writeAtomically(dir, files);
  const bytesOf = (fs: readonly { file: OutputFile }[]) => fs.reduce((n, f) => n + f.file.contents.byteLength, 0);
  return {
    dir,
    handler: `index.${fn}`,
    bytes: bytesOf(code),
    loadedBytes: loadedAtStart(out.metafile),
    mapBytes: bytesOf(files.filter((f) => f.path.endsWith('.map'))),
    contents: contentsOf(out.metafile),
  };
}

/** Writes the files into a staging directory renamed to `dir`, so no one sees half a bundle. */
function writeAtomically(dir: string, files: readonly { path: string; file: OutputFile }[]): void {
  const staging = `${dir}.${process.pid}.tmp`;
  for (const f of files) {
    const target = join(staging, f.path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, f.file.contents);
  }
  try {
    renameSync(staging, dir);
  } catch {
    // Another process wrote the same bundle first.
  }
}

/** Bytes of `index.mjs` and of every chunk it imports statically, directly or not. */
function loadedAtStart(meta: Metafile): number {
  const outputs = meta.outputs;
  // Each module reached through import() is an entry point too: index.mjs is the one at the top.
  const entry = Object.keys(outputs).find((k) => relative(OUT, resolve(k)) === 'index.mjs')!;
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path) || !outputs[path]) return;
    seen.add(path);
    for (const i of outputs[path].imports) if (i.kind === 'import-statement') visit(i.path);
  };
  visit(entry);
  return [...seen].reduce((n, p) => n + outputs[p].bytes, 0);
}

/** Bytes of output per npm package, or per file relative to the package root. */
function contentsOf(meta: Metafile): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [path, output] of Object.entries(meta.outputs)) {
    if (path.endsWith('.map')) continue;
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      if (bytesInOutput === 0) continue;
      // Metafile paths are relative to the working directory; this package's own files are named from its root.
      const inPackage = relative(PACKAGE_ROOT, resolve(input)).split(sep).join('/');
      const where = inPackage.startsWith('../') ? input : inPackage;
      const pkg = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(where);
      const name = pkg ? pkg[1] : where;
      out[name] = (out[name] ?? 0) + bytesInOutput;
    }
  }
  return out;
}
