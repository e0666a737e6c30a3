/**
 * The bench's "bundles" section: what a cold start pays to load each function's deployment bundle
 * (issue 14: worker bundle import ≤ 40 ms on the development machine, ≈ 100 ms before).
 *
 * In the same run, for the job SluiceJob deploys by default (examples/kinesis-wordcount.ts):
 *  - the worker's and the coordinator's bundles, built by cdk/bundle.ts as `cdk deploy` builds them;
 *  - the baseline: the one bundle of both handlers, built the old way (./oldBundle.ts);
 *  - for information, the worker's bundle with `--enable-source-maps` (SluiceJob's `sourceMaps`).
 * Each is imported in a fresh Node process, as a Lambda cold start imports its handler's module:
 * the child times `await import(file)` with performance.now(); the parent times the whole process
 * (start, import, exit) for information. Rounds interleave the bundles, the first one rotating,
 * after one untimed round that warms the file system cache; medians are reported.
 * The check: each bundle exports its handlers and nothing else, and the worker's holds no DynamoDB
 * or Lambda client (the section reports a mismatch otherwise, and the bench exits non-zero).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleJob, type FunctionBundle } from '../cdk/bundle.ts';
import { median, type Timing } from './measure.ts';
import { bundleJobTheOldWay } from './oldBundle.ts';

export interface BundlesConfig {
  /** The job bundled. */
  readonly entry: string;
  /** Timed imports of each bundle, in interleaved rounds. */
  readonly runs: number;
}

export const BUNDLES_FULL: BundlesConfig = { entry: 'examples/kinesis-wordcount.ts', runs: 21 };
export const BUNDLES_QUICK: BundlesConfig = { entry: 'examples/kinesis-wordcount.ts', runs: 3 };

/** The target for the worker bundle's import, in ms on the development machine. */
export const WORKER_IMPORT_TARGET_MS = 40;

/** One bundle's size and import timings. */
export interface BundleImport extends Timing {
  /** Bytes of JavaScript, every file counted. */
  readonly bytes: number;
  /** Bytes of JavaScript imported at start (the old bundle: all of it, one file). */
  readonly loadedBytes: number;
  readonly mapBytes: number;
  /** Wall ms of the whole child process (start, import, exit), per run. */
  readonly wall: Timing;
  /** What the module exports, as the child saw it. */
  readonly exports: readonly string[];
}

export interface BundlesResult {
  readonly config: BundlesConfig;
  readonly worker: BundleImport;
  readonly coordinator: BundleImport;
  /** The baseline: one bundle of both handlers, built the old way. */
  readonly old: BundleImport;
  /** Information: the worker's bundle imported with `--enable-source-maps`. */
  readonly workerWithSourceMaps: BundleImport;
  /** Worker import median ÷ old import median. */
  readonly ratio: number;
  readonly target: number;
  readonly met: boolean;
  /** Bytes per package in each new bundle (esbuild's metafile), for the AWS SDK clients. */
  readonly clients: { readonly worker: Readonly<Record<string, number>>; readonly coordinator: Readonly<Record<string, number>> };
  readonly buildMs: { readonly new: number; readonly old: number };
  readonly elapsedMs: number;
  /** 1-minute load average before and after the timed rounds: other processes slow a cold start down. */
  readonly loadBefore: number;
  readonly loadAfter: number;
  readonly mismatch: string | undefined;
}

interface Sample {
  readonly importMs: number;
  readonly wallMs: number;
  readonly exports: string[];
}

/** Imports `file` in a fresh node with only PATH in its environment; resolves with what the child measured. */
function importOnce(file: string, nodeArgs: readonly string[]): Promise<Sample> {
  const script = [
    'const t0 = performance.now();',
    `const m = await import(${JSON.stringify(pathToFileURL(file).href)});`,
    'const importMs = performance.now() - t0;',
    'process.stdout.write(JSON.stringify({ importMs, exports: Object.keys(m).sort() }));',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - start;
      if (code !== 0) return reject(new Error(`importing ${file} failed (exit ${code}):\n${err}`));
      const r = JSON.parse(out) as { importMs: number; exports: string[] };
      resolve({ importMs: r.importMs, wallMs, exports: r.exports });
    });
  });
}

function timing(name: string, xs: readonly number[]): Timing {
  return { name, samplesMs: xs, medianMs: median(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs) };
}

const CLIENTS = ['@aws-sdk/client-s3', '@aws-sdk/client-kinesis', '@aws-sdk/client-dynamodb', '@aws-sdk/client-lambda'];
const clientsIn = (b: FunctionBundle) => Object.fromEntries(CLIENTS.filter((c) => (b.contents[c] ?? 0) > 0).map((c) => [c, b.contents[c]]));

/** Builds the bundles and times their imports (see the top of this file). */
export async function runBundleImports(config: BundlesConfig, options: { readonly log?: (message: string) => void } = {}): Promise<BundlesResult> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const oldDir = mkdtempSync(join(tmpdir(), 'sluice-bench-old-bundle-'));
  try {
    log('bundles: building the worker and coordinator bundles, and the old combined one');
    let t = performance.now();
    const bundles = bundleJob(join(import.meta.dirname, '..', config.entry));
    const newMs = performance.now() - t;
    t = performance.now();
    const old = bundleJobTheOldWay(config.entry, oldDir);
    const oldMs = performance.now() - t;

    const sides = [
      { name: 'worker', file: join(bundles.worker.dir, 'index.mjs'), args: [] as string[] },
      { name: 'coordinator', file: join(bundles.coordinator.dir, 'index.mjs'), args: [] },
      { name: 'old combined', file: join(old.dir, 'index.mjs'), args: [] },
      { name: 'worker, source maps on', file: join(bundles.worker.dir, 'index.mjs'), args: ['--enable-source-maps'] },
    ];
    const samples: Sample[][] = sides.map(() => []);
    for (const s of sides) await importOnce(s.file, s.args);
    const loadBefore = loadavg()[0];
    for (let round = 0; round < config.runs; round++) {
      log(`bundles: round ${round + 1}/${config.runs}`);
      for (let k = 0; k < sides.length; k++) {
        const i = (round + k) % sides.length;
        samples[i].push(await importOnce(sides[i].file, sides[i].args));
      }
    }
    const result = (i: number, sizes: { bytes: number; loadedBytes: number; mapBytes: number }): BundleImport => ({
      ...timing(sides[i].name, samples[i].map((s) => s.importMs)),
      ...sizes,
      wall: timing(sides[i].name, samples[i].map((s) => s.wallMs)),
      exports: samples[i][0].exports,
    });
    const worker = result(0, bundles.worker);
    const coordinator = result(1, bundles.coordinator);
    const oldImport = result(2, { ...old, loadedBytes: old.bytes });
    const workerWithSourceMaps = result(3, bundles.worker);
    const mismatches = [
      ...[worker, workerWithSourceMaps].filter((b) => b.exports.join() !== 'worker').map((b) => `the ${b.name} bundle exports ${b.exports.join(', ')}, not worker`),
      ...(coordinator.exports.join() !== 'coordinator' ? [`the coordinator bundle exports ${coordinator.exports.join(', ')}, not coordinator`] : []),
      ...(oldImport.exports.join() !== 'coordinator,worker' ? [`the old bundle exports ${oldImport.exports.join(', ')}, not coordinator and worker`] : []),
      ...['@aws-sdk/client-dynamodb', '@aws-sdk/client-lambda'].filter((c) => (bundles.worker.contents[c] ?? 0) > 0).map((c) => `the worker bundle holds ${c}, which only the coordinator calls`),
    ];
    return {
      config,
      worker,
      coordinator,
      old: oldImport,
      workerWithSourceMaps,
      ratio: worker.medianMs / oldImport.medianMs,
      target: WORKER_IMPORT_TARGET_MS,
      met: worker.medianMs <= WORKER_IMPORT_TARGET_MS,
      clients: { worker: clientsIn(bundles.worker), coordinator: clientsIn(bundles.coordinator) },
      buildMs: { new: newMs, old: oldMs },
      elapsedMs: performance.now() - started,
      loadBefore,
      loadAfter: loadavg()[0],
      mismatch: mismatches.length ? mismatches.join('; ') : undefined,
    };
  } finally {
    rmSync(oldDir, { recursive: true, force: true });
  }
}
