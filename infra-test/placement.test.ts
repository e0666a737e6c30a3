import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGraph, defineJob } from '../lib/api/job.ts';
import { createWorkerHandler } from '../lib/aws/handlers.ts';
import { awsCoordinatorRuntime } from '../lib/aws/coordinatorRuntime.ts';
import { awsWorkerRuntime } from '../lib/aws/runtime.ts';
import { Coordinator } from '../lib/engine/coordinator.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack, wordTotals } from './helpers/awsStack.ts';
import { startThrottlingProxy } from './helpers/throttlingProxy.ts';

// Issue 14: a small batch runs inside the coordinator (no Lambda Invoke), a large one fans out,
// and the S3 output is the same either way. Invokes are counted by a proxy in front of the
// emulated Lambda endpoint that refuses nothing.

/** Word counts of a Kinesis stream, saved to S3 per batch. */
function wordCount(name: string, coordinatorBatchRecords: number) {
  return defineJob({ name, batchInterval: '400ms', coordinatorBatchRecords }, (ctx) =>
    ctx
      .kinesisStream(name, { initialPosition: 'TRIM_HORIZON' })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 4 })
      .saveAsTextFiles(`s3://${name}-out/counts`),
  );
}

const lines = (n: number) => Array.from({ length: n }, (_, i) => `w${i % 11} x${i % 5}`);

describe('where a batch runs, on emulated AWS (Kinesis, Lambda, DynamoDB, S3)', () => {
  let stack: AwsStack;
  beforeAll(async () => {
    stack = await startAwsStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Puts `records` lines in a fresh 4-shard stream and runs `n` batches of the job; returns the Invokes and records of each, and the output. */
  async function batches(base: string, records: number, coordinatorBatchRecords: number, n = 1) {
    const name = stack.name(base);
    await createResources(stack, name, 4);
    await putLines(stack, name, lines(records));
    const proxy = await startThrottlingProxy(stack.lambda.endpoint, 'lambda', {});
    try {
      const job = wordCount(name, coordinatorBatchRecords);
      const emulated = stack.config(name);
      const endpoint = emulated.aws!.endpoint as Record<string, string>;
      const config = { ...emulated, aws: { ...emulated.aws, endpoint: { ...endpoint, lambda: proxy.endpoint } } };
      stack.lambda.register(
        config.workerFunction!,
        createWorkerHandler(async () => job, (graph) => awsWorkerRuntime(graph, config)),
      );
      const graph = buildGraph(job);
      const logs: string[] = [];
      const coordinator = new Coordinator(graph, job.options, { ...awsCoordinatorRuntime(graph, config, (l) => logs.push(l)), retryBackoffMs: 5 });
      await coordinator.start();
      const invokes: number[] = [];
      const counted: number[] = [];
      for (let b = 0; b < n; b++) {
        // Kinesis reads an open split up to the batch time: a batch starts once its time has passed.
        while (Date.now() <= coordinator.nextBatchTime) await new Promise((r) => setTimeout(r, 20));
        const before = proxy.operations().filter((o) => o === 'Invoke').length;
        counted.push((await coordinator.runNextBatch()).numRecords);
        invokes.push(proxy.operations().filter((o) => o === 'Invoke').length - before);
      }
      await coordinator.stop();
      await coordinator.releaseLease();
      const output = await readS3Batches(stack, `${name}-out`, 'counts');
      return { invokes, records: counted, counts: [...output.values()].flat().sort(), logs };
    } finally {
      await proxy.stop();
    }
  }

  it('a batch of 50 records makes 0 Invoke, and saves what a fanned-out run saves', async () => {
    const inside = await batches('place-inside', 50, 1000);
    const fanned = await batches('place-fanned', 50, 0);
    expect(inside.records).toEqual([50]);
    expect(inside.invokes).toEqual([0]);
    expect(inside.logs.some((l) => l.includes('tasks run inside the coordinator'))).toBe(true);
    expect(fanned.records).toEqual([50]);
    // 4 shards and 4 reduce partitions: 4 map tasks and 4 output tasks.
    expect(fanned.invokes[0]).toBeGreaterThanOrEqual(8);
    expect(inside.counts).toEqual(fanned.counts);
    expect(inside.counts).toContain('(w0,5)');
  }, 60_000);

  it('a batch larger than the bound fans out', async () => {
    // Prepare: 400 records waiting, a bound of 20 records.
    // Act: two batches. The first of a job is capped at the bound (5 records a shard) and runs
    // inside; its splits come back full, so the second is cut without the cap and fans out.
    const run = await batches('place-large', 400, 20, 2);

    // Assess
    expect(run.records).toEqual([20, 380]);
    expect(run.invokes[0]).toBe(0);
    expect(run.invokes[1]).toBeGreaterThanOrEqual(8);
    expect(run.logs.some((l) => l.includes('tasks run on workers'))).toBe(true);
    const reference = await batches('place-large-fanned', 400, 0);
    expect(run.counts.length).toBeGreaterThan(0);
    expect(wordTotals(run.counts)).toEqual(wordTotals(reference.counts));
  }, 60_000);
});

