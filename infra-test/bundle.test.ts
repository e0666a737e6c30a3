import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleJob } from '../cdk/bundle.ts';
import type { CoordinatorRun } from '../lib/aws/handlers.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack } from './helpers/awsStack.ts';

interface CoordinatorBundle {
  coordinator(event: unknown, context: { getRemainingTimeInMillis(): number }): Promise<CoordinatorRun>;
}
interface WorkerBundle {
  worker(event: unknown): Promise<unknown>;
}

const ROOT = join(import.meta.dirname, '..');
const importBundle = async <T>(dir: string) => (await import(pathToFileURL(join(dir, 'index.mjs')).href)) as T;

/** The coordinator stops starting batches 15 s before its time runs out (lib/aws/lambda.ts). */
const MARGIN_MS = 15_000;

/**
 * What `cdk deploy` ships: the job bundled by esbuild with each function's handler, one bundle per
 * function, loaded as Lambda loads them (ES modules whose `coordinator` and `worker` exports are
 * the handlers), configured only by the environment variables the SluiceJob construct sets — run
 * against the emulators.
 */
describe('the deployment bundles run the job on emulated AWS', () => {
  let stack: AwsStack;
  let bundle: CoordinatorBundle & WorkerBundle;
  let name: string;
  const saved = { ...process.env };
  const lines = Array.from({ length: 600 }, (_, i) => `alpha beta${i % 3} gamma${i % 5}`);

  beforeAll(async () => {
    stack = await startAwsStack();
    name = stack.name('bundled');
    await createResources(stack, name, 2);
    const config = stack.config(name);
    // The environment SluiceJob gives both functions; the job reads SLUICE_STREAM and SLUICE_SINK_BUCKET when it loads.
    Object.assign(process.env, {
      SLUICE_STREAM: name,
      SLUICE_SINK_BUCKET: `${name}-out`,
      SLUICE_STATE_BUCKET: config.stateBucket,
      SLUICE_TABLE: config.table,
      SLUICE_WORKER_FUNCTION: config.workerFunction,
      SLUICE_S3_ENDPOINT: stack.s3.endpoint,
      SLUICE_DYNAMODB_ENDPOINT: stack.dynamo.endpoint,
      SLUICE_KINESIS_ENDPOINT: stack.kinesis.endpoint,
      SLUICE_LAMBDA_ENDPOINT: stack.lambda.endpoint,
      SLUICE_BATCH_INTERVAL: '1000',
    });
    const bundles = bundleJob('examples/kinesis-wordcount.ts');
    bundle = { ...(await importBundle<CoordinatorBundle>(bundles.coordinator.dir)), ...(await importBundle<WorkerBundle>(bundles.worker.dir)) };
    stack.lambda.register(config.workerFunction!, (event) => bundle.worker(event));
  }, 60_000);

  afterAll(async () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    await stack?.stop();
  });

  it('a worker payload of the wrong shape comes back as a non-retryable failure', async () => {
    const out = (await bundle.worker({ hello: 'world' })) as { ok: boolean; retryable: boolean; error: { name: string; message: string } };
    expect(out.ok).toBe(false);
    expect(out.retryable).toBe(false);
    expect(out.error.name).toBe('TaskPayloadError');
  });

  it('two overlapping coordinator runs hand the lease over: the second waits, then goes on from the first one’s last batch', async () => {
    await putLines(stack, name, lines);
    // The first run starts batches for 2 s. The second, the next minute's run, may start batches
    // for 5 s: it starts while the first holds the lease, waits for it, and takes over.
    const first = bundle.coordinator({}, { getRemainingTimeInMillis: () => MARGIN_MS + 2000 });
    const second = bundle.coordinator({}, { getRemainingTimeInMillis: () => MARGIN_MS + 5000 });
    const [a, b] = await Promise.all([first, second]);
    expect([a.skipped, b.skipped]).toEqual([undefined, undefined]);
    const [early, late] = [a, b].sort((x, y) => x.lastCompleted - y.lastCompleted);
    expect(early.batches).toBeGreaterThan(0);
    expect(late.batches).toBeGreaterThan(0);
    expect(late.lastCompleted).toBeGreaterThan(early.lastCompleted);

    // Every word of every line counted once, in 1 s batches (the interval the environment sets).
    const batches = await readS3Batches(stack, `${name}-out`, 'wordcount');
    const times = [...batches.keys()];
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBe(1000);
    const totals = new Map<string, number>();
    for (const line of [...batches.values()].flat()) {
      const [, word, n] = /^\((.*),(\d+)\)$/.exec(line)!;
      totals.set(word, (totals.get(word) ?? 0) + Number(n));
    }
    const expected = new Map<string, number>();
    for (const w of lines.flatMap((l) => l.split(' '))) expected.set(w, (expected.get(w) ?? 0) + 1);
    expect(Object.fromEntries(totals)).toEqual(Object.fromEntries(expected));
  }, 60_000);
});

describe('each function gets a bundle of its own, holding what that function runs', () => {
  const bundles = bundleJob(join(ROOT, 'examples/kinesis-wordcount.ts'));
  const has = (contents: Readonly<Record<string, number>>, name: string) => (contents[name] ?? 0) > 0;

  it('the worker holds the S3 and Kinesis clients it calls, and no DynamoDB or Lambda client, nor the coordinator’s protocol', () => {
    const { contents } = bundles.worker;
    for (const name of ['@aws-sdk/client-s3', '@aws-sdk/client-kinesis', 'lib/engine/worker.ts', 'lib/aws/s3BlobStore.ts', 'examples/kinesis-wordcount.ts']) expect(has(contents, name), name).toBe(true);
    for (const name of ['@aws-sdk/client-dynamodb', '@aws-sdk/client-lambda', 'lib/engine/coordinator.ts', 'lib/engine/commitLog.ts', 'lib/aws/dynamoMetaStore.ts', 'lib/aws/lambdaInvoker.ts']) {
      expect(has(contents, name), name).toBe(false);
    }
  });

  it('the coordinator holds all four clients it calls and the batch protocol', () => {
    const { contents } = bundles.coordinator;
    for (const name of ['@aws-sdk/client-s3', '@aws-sdk/client-kinesis', '@aws-sdk/client-dynamodb', '@aws-sdk/client-lambda', 'lib/engine/coordinator.ts', 'lib/aws/lambdaInvoker.ts']) {
      expect(has(contents, name), name).toBe(true);
    }
  });

  it('neither holds the local runtime, the command line, the TypeScript loader, esbuild or the CDK, and the AWS SDK comes as ES modules', () => {
    for (const { contents } of [bundles.coordinator, bundles.worker]) {
      const names = Object.keys(contents);
      expect(names.filter((n) => /^(lib\/(local|cli|testing)\/|tsx$|esbuild$|aws-cdk-lib$|constructs$)/.test(n))).toEqual([]);
      // A CommonJS build of the SDK would be whole: the S3 client's ES modules are tree-shaken to the commands used.
      expect(contents['@aws-sdk/client-s3']).toBeLessThan(130_000);
    }
  });

  it('each asset is its index.mjs, the chunks it imports, and a source map beside each; the two differ', () => {
    for (const [fn, b] of Object.entries(bundles)) {
      const files = readdirSync(b.dir, { recursive: true, encoding: 'utf8' }).filter((f) => !f.endsWith('chunks'));
      expect(files).toContain('index.mjs');
      expect(files.filter((f) => !/^(index|chunks\/[\w-]+)\.mjs(\.map)?$/.test(f.replaceAll('\\', '/'))), fn).toEqual([]);
      for (const code of files.filter((f) => f.endsWith('.mjs'))) expect(files, code).toContain(`${code}.map`);
      expect(b.handler).toBe(`index.${fn}`);
      expect(b.loadedBytes).toBeLessThanOrEqual(b.bytes);
      expect(b.mapBytes).toBeGreaterThan(0);
    }
    expect(bundles.worker.dir).not.toBe(bundles.coordinator.dir);
    expect(bundles.worker.bytes).toBeLessThan(bundles.coordinator.bytes);
  });

  /** The stack of the failure the worker returns for a payload of the wrong shape, in a fresh process with `nodeOptions`. */
  async function failureStack(nodeOptions: string): Promise<string> {
    const script = `const { worker } = await import(${JSON.stringify(pathToFileURL(join(bundles.worker.dir, 'index.mjs')).href)});
      const out = await worker({ hello: 'world' });
      process.stdout.write(JSON.stringify(out.error));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '', SLUICE_STATE_BUCKET: 'state', SLUICE_TABLE: 'table', AWS_REGION: 'us-east-1', ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
    });
    const error = JSON.parse(stdout) as { name: string; stack: string };
    expect(error.name).toBe('TaskPayloadError');
    return error.stack;
  }

  it('a stack trace names the bundle’s minified code unless the source maps are turned on, and then the TypeScript sources', async () => {
    const plain = await failureStack('');
    expect(plain).toMatch(/index\.mjs:\d+:\d+/);
    expect(plain).not.toMatch(/\.ts:\d+/);
    const mapped = await failureStack('--enable-source-maps');
    expect(mapped).toMatch(/lib\/engine\/taskPayload\.ts:\d+:\d+/);
  }, 30_000);

  it('a job file that does not exist is refused, naming it', () => {
    expect(() => bundleJob('no/such/job.ts')).toThrow(/bundleJob: job file no\/such\/job\.ts does not exist/);
  });

  it('a job file that cannot be bundled is refused, naming the function and what esbuild could not do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-unbundlable-'));
    try {
      writeFileSync(join(dir, 'job.ts'), "export { default } from './missing-job.ts';\n");
      expect(() => bundleJob(join(dir, 'job.ts'))).toThrow(/bundleJob: the coordinator bundle of .*job\.ts cannot be built: .*Could not resolve "\.\/missing-job\.ts"/s);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
