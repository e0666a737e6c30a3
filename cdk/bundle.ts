import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

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

const bundles = new Map<string, string>();

/**
 * Bundles a job file with the Lambda handlers into one ES module, `index.mjs`, exporting
 * `coordinator` and `worker`: esbuild in this process, no Docker. The job is imported statically,
 * so the functions need no job file at run time; `sluice` resolves to this package, so the job and
 * the handlers share one copy of the engine. Returns a directory holding only the bundle (and its
 * source map), named by the bundle's hash: the same job bundles to the same asset.
 */
export function bundleJob(entry: string): string {
  const file = resolve(entry);
  const known = bundles.get(file);
  if (known && existsSync(known)) return known;
  const lambda = packageFile('lib/aws/lambda.ts');
  const out = buildSync({
    stdin: {
      contents: [
        `import job from ${JSON.stringify(file)};`,
        `import { coordinatorHandler, workerHandler } from ${JSON.stringify(lambda)};`,
        'export const coordinator = coordinatorHandler(async () => job);',
        'export const worker = workerHandler(async () => job);',
      ].join('\n'),
      resolveDir: dirname(file),
      sourcefile: 'sluice-handlers.ts',
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    outfile: 'index.mjs',
    write: false,
    minify: true,
    // Error names (RecordError, CheckpointError…) are read at run time.
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'none',
    // The job's `sluice` is this very copy of the package, whichever its node_modules would find.
    alias: { sluice: packageFile('lib/index.ts'), 'sluice/testing': packageFile('lib/testing/index.ts') },
    // Some dependencies are CommonJS and call require() on Node's built-ins.
    banner: { js: "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);" },
    logLevel: 'silent',
  });
  const hash = createHash('sha256');
  for (const f of out.outputFiles) hash.update(f.path.endsWith('.map') ? '' : f.text);
  const dir = join(tmpdir(), `sluice-bundle-${hash.digest('hex').slice(0, 16)}`);
  if (!existsSync(dir)) {
    const staging = `${dir}.${process.pid}.tmp`;
    mkdirSync(staging, { recursive: true });
    for (const f of out.outputFiles) writeFileSync(join(staging, f.path.endsWith('.map') ? 'index.mjs.map' : 'index.mjs'), f.contents);
    try {
      renameSync(staging, dir);
    } catch {
      // Another process wrote the same bundle first.
    }
  }
  bundles.set(file, dir);
  return dir;
}
