import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleJob } from '../cdk/bundle.ts';
import type { CoordinatorRun } from '../lib/aws/handlers.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack } from './helpers/awsStack.ts';

interface Bundle {
  coordinator(event: unknown, context: { getRemainingTimeInMillis(): number }): Promise<CoordinatorRun>;
  worker(event: unknown): Promise<unknown>;
}

/** The coordinator stops starting batches 15 s before its time runs out (lib/aws/lambda.ts). */
const MARGIN_MS = 15_000;

/**
 * What `cdk deploy` ships: the job bundled with the handlers by esbuild, loaded as Lambda loads
 * it (an ES module whose `coordinator` and `worker` exports are the handlers), configured only by
 * the environment variables the SluiceJob construct sets — run against the emulators.
 */
describe('the deployment bundle runs the job on emulated AWS', () => {
  let stack: AwsStack;
  let bundle: Bundle;
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
    const dir = bundleJob('examples/kinesis-wordcount.ts');
    bundle = (await import(pathToFileURL(join(dir, 'index.mjs')).href)) as Bundle;
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
