import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineJob, type JobDefinition } from '../lib/api/job.ts';
import { type CoordinatorRun, createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import { awsCoordinatorRuntime, awsWorkerRuntime } from '../lib/aws/runtime.ts';
import type { ProtocolStep } from '../lib/engine/coordinator.ts';
import { runBatches } from '../lib/testing/index.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack } from './helpers/awsStack.ts';

const LINES = Array.from({ length: 1800 }, (_, i) => `w${i % 13} x${i % 7} line${i}`);

/** Raw lines and word counts of a Kinesis stream, both saved to S3 per batch. */
function job(name: string, extra: { onRecordError?: 'fail' | 'dead-letter'; decode?: (b: Uint8Array) => string; maxTaskAttempts?: number } = {}): JobDefinition {
  return defineJob({ name, batchInterval: '400ms', onRecordError: extra.onRecordError, maxTaskAttempts: extra.maxTaskAttempts }, (ctx) => {
    const lines = ctx.kinesisStream(name, { initialPosition: 'TRIM_HORIZON', maxRecordsPerBatch: 120, decode: extra.decode });
    lines.saveAsTextFiles(`s3://${name}-out/raw`);
    lines
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 3 })
      .saveAsTextFiles(`s3://${name}-out/counts`);
  });
}

interface RunOptions {
  /** Wraps the worker handler (crashes, duplicates). */
  readonly worker?: (run: (e: unknown) => Promise<unknown>) => (e: unknown) => Promise<unknown>;
  /** Called at protocol steps of the first coordinator invocation. */
  readonly onStep?: (step: ProtocolStep, time: number) => void;
  /** Coordinator invocations, each given this much time (ms). */
  readonly invocations?: number[];
  /** Run the invocations at the same time instead of one after another. */
  readonly concurrent?: boolean;
  readonly job?: JobDefinition;
  readonly lines?: readonly string[];
}

describe('end to end on emulated AWS: Kinesis in, Lambda coordinator and workers, DynamoDB lineage, S3 out', () => {
  let stack: AwsStack;
  beforeAll(async () => {
    stack = await startAwsStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function runJob(name: string, options: RunOptions = {}) {
    await createResources(stack, name, 4);
    await putLines(stack, name, options.lines ?? LINES);
    const config = stack.config(name);
    const definition = options.job ?? job(name);
    const worker = createWorkerHandler(async () => definition, (graph) => awsWorkerRuntime(graph, config));
    stack.lambda.register(config.workerFunction!, options.worker ? options.worker(worker) : worker);
    const logs: string[] = [];
    let first = true;
    const invoke = (ms: number) => {
      const onStep = first ? options.onStep : undefined;
      first = false;
      const handler = createCoordinatorHandler(async () => definition, (graph) => ({ ...awsCoordinatorRuntime(graph, config, (l) => logs.push(l)), retryBackoffMs: 5, onStep }), {
        marginMs: 0,
        log: (l) => logs.push(l),
      });
      return handler({}, { getRemainingTimeInMillis: () => ms }).catch((e: Error) => ({ error: e }) as const);
    };
    const plan = options.invocations ?? [6000];
    const runs: (CoordinatorRun | { error: Error })[] = [];
    if (options.concurrent) runs.push(...(await Promise.all(plan.map(invoke))));
    else for (const ms of plan) runs.push(await invoke(ms));
    return { runs, logs, raw: await readS3Batches(stack, `${name}-out`, 'raw'), counts: await readS3Batches(stack, `${name}-out`, 'counts') };
  }

  /** The word counts the local runtime computes from the same records per batch. */
  async function localCounts(rawBatches: string[][]) {
    const out = await runBatches({ batchInterval: 400, batches: rawBatches.length }, (ctx) =>
      ctx
        .queueStream(rawBatches)
        .flatMap((l) => l.split(' '))
        .map((w) => [w, 1] as [string, number])
        .reduceByKey((a, b) => a + b, { numPartitions: 3 }),
    );
    return out.map((b) => b.data.map(([w, n]) => `(${w},${n})`).sort());
  }

  async function expectExactlyOnce(result: Awaited<ReturnType<typeof runJob>>) {
    const rawBatches = [...result.raw.values()];
    // Every record once, none twice, none missing.
    expect(rawBatches.flat().sort()).toEqual([...LINES].sort());
    // Several batches drained the backlog (120 records per shard per batch).
    expect(rawBatches.filter((b) => b.length > 0).length).toBeGreaterThanOrEqual(4);
    // Same batches in both outputs, and the counts are what the local runtime computes from them.
    expect([...result.counts.keys()]).toEqual([...result.raw.keys()]);
    expect([...result.counts.values()].map((lines) => [...lines].sort())).toEqual(await localCounts(rawBatches));
  }

  it('a clean run: every record counted exactly once, as the local runtime counts it', async () => {
    const result = await runJob('e2e-clean');
    expect(result.runs.every((r) => !('error' in r))).toBe(true);
    await expectExactlyOnce(result);
    expect(result.logs.some((l) => l.includes('"_aws"') && l.includes('"InputRecords"'))).toBe(true);
  }, 60_000);

  it('a worker that dies mid-task is retried; the output is unchanged', async () => {
    let deaths = 0;
    const result = await runJob('e2e-worker-dies', {
      worker: (run) => async (e) => {
        if (deaths < 3) {
          deaths++;
          throw new Error('Runtime exited with error: signal: killed');
        }
        return run(e);
      },
    });
    expect(deaths).toBe(3);
    await expectExactlyOnce(result);
  }, 60_000);

  it('a worker invoked twice for one task (Lambda retried it) changes nothing', async () => {
    const result = await runJob('e2e-duplicate', {
      worker: (run) => async (e) => {
        await run(e);
        return run(e);
      },
    });
    await expectExactlyOnce(result);
  }, 60_000);

  it('a coordinator stopped after sealing a batch and before its commit is replaced: same output', async () => {
    let stopped = false;
    const result = await runJob('e2e-coordinator-dies', {
      invocations: [6000, 6000],
      onStep: (step) => {
        if (!stopped && step === 'sealed') {
          stopped = true;
          throw new Error('coordinator lost');
        }
      },
    });
    expect(stopped).toBe(true);
    expect('error' in result.runs[0]).toBe(true);
    expect(result.logs.some((l) => /recovering batch \d+ from its lineage record/.test(l))).toBe(true);
    await expectExactlyOnce(result);
  }, 60_000);

  it('a second coordinator started while the first holds the lease stands aside', async () => {
    const result = await runJob('e2e-two-coordinators', { invocations: [6000, 6000], concurrent: true });
    const skipped = result.runs.filter((r) => 'skipped' in r && r.skipped);
    expect(skipped).toHaveLength(1);
    await expectExactlyOnce(result);
  }, 60_000);

  const strict = (b: Uint8Array) => {
    const text = new TextDecoder().decode(b);
    if (text.startsWith('bad')) throw new Error(`cannot decode ${JSON.stringify(text)}`);
    return text;
  };
  const withBad = [...LINES.slice(0, 600), 'bad record one', ...LINES.slice(600), 'bad record two'];

  it("a record the decoder rejects goes to dead letters with onRecordError: 'dead-letter'; the rest is counted exactly once", async () => {
    const name = 'e2e-dead-letter';
    const result = await runJob(name, { job: job(name, { onRecordError: 'dead-letter', decode: strict }), lines: withBad });
    expect(result.runs.every((r) => !('error' in r))).toBe(true);
    await expectExactlyOnce(result);
    // Dead letters are JSON lines under <job>/dead-letters/<batch time>/ in the state bucket.
    const { S3Client, ListObjectsV2Command, GetObjectCommand } = await import('@aws-sdk/client-s3');
    const s3 = new S3Client({ endpoint: stack.s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: `${name}-state`, Prefix: `${name}/dead-letters/` }));
    const bodies = await Promise.all((listed.Contents ?? []).map(async (o) => (await (await s3.send(new GetObjectCommand({ Bucket: `${name}-state`, Key: o.Key }))).Body!.transformToString())));
    const parsed = bodies.flatMap((b) => b.trim().split('\n')).map((l) => JSON.parse(l));
    expect(parsed.map((d) => Buffer.from(d.record.data, 'base64').toString()).sort()).toEqual(['bad record one', 'bad record two']);
    for (const d of parsed) {
      expect(d.error).toMatch(/cannot decode "bad record/);
      expect(d.source.node).toBe('kinesis-1');
      expect(d.record.sequenceNumber).toMatch(/^\d+$/);
    }
    expect(result.logs.some((l) => /record\(s\) set aside under dead-letters/.test(l))).toBe(true);
  }, 60_000);

  it('by default a record the decoder rejects fails the batch with a RecordError, and nothing past it is committed', async () => {
    const name = 'e2e-decoder-fails';
    const result = await runJob(name, { job: job(name, { decode: strict, maxTaskAttempts: 2 }), lines: withBad });
    const failed = result.runs.find((r) => 'error' in r) as { error: Error } | undefined;
    expect(failed?.error.name).toBe('RecordError');
    expect(failed?.error.message).toMatch(/the decoder threw on record \d+ of shard shardId-\d+ of Kinesis stream e2e-decoder-fails: cannot decode "bad record one"/);
    // Batches before the bad record were committed; none of its batch's output exists.
    const raw = [...result.raw.values()].flat();
    expect(raw).not.toContain('bad record one');
    expect(raw.length).toBeLessThan(LINES.length);
  }, 60_000);

  it('throttled worker invocations are retried; the output is unchanged', async () => {
    stack.lambda.throttleNext(6);
    const result = await runJob('e2e-throttled');
    await expectExactlyOnce(result);
  }, 60_000);
});
