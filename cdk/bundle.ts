import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

/** The package root (this file is `<root>/cdk/bundle.ts`). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

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
  const lambda = join(PACKAGE_ROOT, 'lib/aws/lambda.ts');
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
    alias: { sluice: join(PACKAGE_ROOT, 'lib/index.ts'), 'sluice/testing': join(PACKAGE_ROOT, 'lib/testing/index.ts') },
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
