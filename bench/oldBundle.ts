/**
 * The deployment bundle as cdk/bundle.ts built it before issue 14, kept for the bench's baseline
 * only (bench/ is not in the package, and nothing outside bench/ imports this): one ES module
 * exporting both handlers, so both functions loaded the coordinator's code and all four AWS SDK
 * clients; esbuild's default resolution for Node, which takes the SDK's CommonJS builds (`main`),
 * whole, since CommonJS cannot be tree-shaken; one file, no chunks. Its options are the old ones,
 * word for word; only the handler modules are today's (the old lib/aws/lambda.ts exported both
 * factories from one module, reached through the old runtime module, which imported every
 * adapter; importing both of today's modules reaches the same code).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildSync } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');

/** The old bundle of one job: its directory (`index.mjs` and `index.mjs.map`) and sizes. */
export interface OldBundle {
  readonly dir: string;
  readonly bytes: number;
  readonly mapBytes: number;
}

/**
 * Builds the old combined bundle of `entry` into `dir`.
 *
 * @example
 * ```ts
 * const old = bundleJobTheOldWay('examples/kinesis-wordcount.ts', mkdtempSync(join(tmpdir(), 'old-')));
 * const { coordinator, worker } = await import(pathToFileURL(join(old.dir, 'index.mjs')).href);
 * ```
 */
export function bundleJobTheOldWay(entry: string, dir: string): OldBundle {
  const file = join(ROOT, entry);
  const out = buildSync({
    stdin: {
      contents: [
        `import job from ${JSON.stringify(file)};`,
        `import { coordinatorHandler } from ${JSON.stringify(join(ROOT, 'lib/aws/coordinatorLambda.ts'))};`,
        `import { workerHandler } from ${JSON.stringify(join(ROOT, 'lib/aws/workerLambda.ts'))};`,
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
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'none',
    alias: { sluice: join(ROOT, 'lib/index.ts'), 'sluice/testing': join(ROOT, 'lib/testing/index.ts') },
    banner: { js: "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);" },
    logLevel: 'silent',
  });
  mkdirSync(dir, { recursive: true });
  let bytes = 0;
  let mapBytes = 0;
  for (const f of out.outputFiles) {
    const map = f.path.endsWith('.map');
    writeFileSync(join(dir, map ? 'index.mjs.map' : 'index.mjs'), f.contents);
    if (map) mapBytes += f.contents.byteLength;
    else bytes += f.contents.byteLength;
  }
  return { dir, bytes, mapBytes };
}
