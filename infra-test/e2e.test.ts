import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineJob, type JobDefinition } from '../lib/api/job.ts';
import { type CoordinatorRun, createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import type { AwsConfig } from '../lib/aws/clients.ts';
import { type AwsRuntimeConfig, awsCoordinatorRuntime, awsWorkerRuntime } from '../lib/aws/runtime.ts';
import type { ProtocolStep } from '../lib/engine/coordinator.ts';
import { runBatches } from '../lib/testing/index.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack } from './helpers/awsStack.ts';
import { startThrottlingProxy, type ThrottledService, type ThrottlePolicy, type ThrottlingProxy } from './helpers/throttlingProxy.ts';

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
  /** Stop invoking the coordinator once the output holds every line (`expectedLines` of them). */
  readonly untilDrained?: boolean;
  /** Lines the output holds when the stream is drained. @default every line put */
  readonly expectedLines?: number;
  readonly lines?: readonly string[];
  /**
   * Endpoints the job's coordinator and workers use instead of the emulators' (throttling proxies).
   * Creating the resources, putting the lines and reading the output still go to the emulators.
   */
  readonly endpoints?: { readonly s3?: string; readonly dynamodb?: string; readonly kinesis?: string };
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
    const emulated = stack.config(name);
    // stackConfig gives one endpoint per service; the overrides replace some of them for the job only.
    const perService = emulated.aws!.endpoint as Exclude<NonNullable<AwsConfig['endpoint']>, string>;
    const config: AwsRuntimeConfig = options.endpoints ? { ...emulated, aws: { ...emulated.aws, endpoint: { ...perService, ...options.endpoints } } } : emulated;
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
    // By default short invocations, as many as it takes to drain the stream (at most four).
    const plan = options.invocations ?? [2500, 2500, 2500, 2500];
    const untilDrained = options.untilDrained ?? options.invocations === undefined;
    const runs: (CoordinatorRun | { error: Error })[] = [];
    if (options.concurrent) runs.push(...(await Promise.all(plan.map(invoke))));
    else {
      for (const ms of plan) {
        runs.push(await invoke(ms));
        // As the schedule would, until the output holds every line.
        const expected = options.expectedLines ?? (options.lines ?? LINES).length;
        if (untilDrained && [...(await readS3Batches(stack, `${name}-out`, 'raw')).values()].flat().length >= expected) break;
      }
    }
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

  /** A throttling proxy in front of each emulator named in `policies`, and their endpoints for {@link runJob}; the test stops them. */
  async function throttlingProxies(policies: Partial<Record<ThrottledService, ThrottlePolicy>>) {
    const targets: Record<ThrottledService, string> = { s3: stack.s3.endpoint, dynamodb: stack.dynamo.endpoint, kinesis: stack.kinesis.endpoint, lambda: stack.lambda.endpoint };
    const proxies: Partial<Record<ThrottledService, ThrottlingProxy>> = {};
    for (const service of Object.keys(policies) as ThrottledService[]) proxies[service] = await startThrottlingProxy(targets[service], service, policies[service]!);
    const endpoints = Object.fromEntries(Object.entries(proxies).map(([service, p]) => [service, p.endpoint])) as Partial<Record<ThrottledService, string>>;
    return { proxies, endpoints, stop: async () => void (await Promise.all(Object.values(proxies).map((p) => p.stop()))) };
  }

  it('a clean run: every record counted exactly once, as the local runtime counts it', async () => {
    const result = await runJob(stack.name('e2e-clean'));
    expect(result.runs.every((r) => !('error' in r))).toBe(true);
    await expectExactlyOnce(result);
    expect(result.logs.some((l) => l.includes('"_aws"') && l.includes('"InputRecords"'))).toBe(true);
  }, 60_000);

  it('a worker that dies mid-task is retried; the output is unchanged', async () => {
    let deaths = 0;
    const result = await runJob(stack.name('e2e-worker-dies'), {
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
    const result = await runJob(stack.name('e2e-duplicate'), {
      worker: (run) => async (e) => {
        await run(e);
        return run(e);
      },
    });
    await expectExactlyOnce(result);
  }, 60_000);

  it('a coordinator stopped after sealing a batch and before its commit is replaced: same output', async () => {
    let stopped = false;
    const result = await runJob(stack.name('e2e-coordinator-dies'), {
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
    const result = await runJob(stack.name('e2e-two-coordinators'), { invocations: [6000, 6000], concurrent: true });
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
    const name = stack.name('e2e-dead-letter');
    const result = await runJob(name, { job: job(name, { onRecordError: 'dead-letter', decode: strict }), lines: withBad, expectedLines: LINES.length });
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
    const name = stack.name('e2e-decoder-fails');
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
    const result = await runJob(stack.name('e2e-throttled'));
    await expectExactlyOnce(result);
  }, 60_000);

  // Throttling on S3, DynamoDB and Kinesis: real HTTP through proxies that answer some requests with
  // the service's own throttling error, which the SDK retries (maxAttempts 3 in lib/aws/clients.ts,
  // at least 1 s of backoff base for a throttle). Only the job's clients go through the proxies.

  it('throttling on every service (S3, DynamoDB, Kinesis and Lambda) is retried; the output is unchanged', async () => {
    // Every 7th request. The coordinator calls one at a time, so its retry is the next request and goes through;
    // a worker's retry may meet another refusal when other tasks' requests come in between: the SDK retries again.
    const { proxies, endpoints, stop } = await throttlingProxies({ s3: { every: 7 }, dynamodb: { every: 7 }, kinesis: { every: 7 } });
    try {
      const lambdaBefore = stack.lambda.throttled();
      stack.lambda.throttleNext(6);
      // Six batch times at the least, seven as a rule: the fullest shard holds 678 of the lines, six batches of up to 120.
      // Throttled, the backlog takes more than one invocation's time: later invocations go on with it.
      const result = await runJob(stack.name('e2e-throttled-everywhere'), { endpoints, invocations: [3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000], untilDrained: true });
      expect(result.runs.every((r) => !('error' in r))).toBe(true);
      for (const p of Object.values(proxies)) expect(p.refused()).toBeGreaterThan(0);
      expect(stack.lambda.throttled() - lambdaBefore).toBe(6);
      await expectExactlyOnce(result);
    } finally {
      await stop();
    }
  }, 60_000);

  /** Runs the job with DynamoDB behind a proxy that refuses `count` requests in a row from the third batch's commit on. */
  async function dynamoBurst(base: string, count: number) {
    const { proxies, endpoints, stop } = await throttlingProxies({ dynamodb: {} });
    const dynamo = proxies.dynamodb!;
    let successes = 0;
    let burstAt: number | undefined;
    try {
      const result = await runJob(stack.name(base), {
        endpoints,
        invocations: [6000, 6000],
        untilDrained: true,
        // Two outputs per batch: after the second _SUCCESS of the third batch, the next DynamoDB request is its commit.
        onStep: (step, time) => {
          if (step === 'success' && ++successes === 6) {
            burstAt = time;
            dynamo.refuseNext(count);
          }
        },
      });
      return { result, burstAt: burstAt!, refused: dynamo.refusedOperations() };
    } finally {
      await stop();
    }
  }

  it('a burst of DynamoDB throttling longer than the SDK’s own retries is absorbed by the meta store; the run goes on', async () => {
    // The SDK makes 3 attempts; the commit's 4th (the meta store's first retry) goes through.
    const { result, burstAt, refused } = await dynamoBurst('e2e-dynamo-burst', 4);
    expect(burstAt).toBeDefined();
    expect(refused).toEqual(['UpdateItem', 'UpdateItem', 'UpdateItem', 'UpdateItem']);
    expect(result.runs[0]).not.toHaveProperty('error');
    expect(result.logs.some((l) => /recovering batch/.test(l))).toBe(false);
    await expectExactlyOnce(result);
  }, 60_000);

  it('DynamoDB throttled past every retry fails the coordinator invocation with an error naming the table; the next one resumes', async () => {
    // 7 tries of 3 SDK attempts each: the commit fails; the lease release after it goes through.
    const { result, burstAt, refused } = await dynamoBurst('e2e-dynamo-stuck', 21);
    expect(refused).toEqual(Array(21).fill('UpdateItem'));
    const [first, second] = result.runs;
    expect((first as { error: Error }).error.message).toMatch(/^DynamoDB UpdateItem of \S+ in table e2e-dynamo-stuck\S*-meta is still throttled \(ThrottlingException\) after 6 retries/);
    // The lease was released, so the next invocation did not stand aside; it re-ran the uncommitted batch from its lineage.
    expect(second).not.toHaveProperty('error');
    expect(second).not.toHaveProperty('skipped');
    expect(result.logs).toContain(`recovering batch ${burstAt} from its lineage record`);
    expect(result.logs.some((l) => l.includes('"FailedBatches":1'))).toBe(true);
    await expectExactlyOnce(result);
  }, 90_000);

  it('a burst of S3 throttling longer than the SDK retries fails worker tasks; the coordinator retries them and the output is unchanged', async () => {
    const name = stack.name('e2e-s3-burst');
    const { proxies, endpoints, stop } = await throttlingProxies({ s3: {} });
    const s3 = proxies.s3!;
    let sealed = 0;
    let burstAt: number | undefined;
    try {
      const result = await runJob(name, {
        endpoints,
        invocations: [3000, 3000, 3000],
        untilDrained: true,
        // Once the third batch's input is sealed, the next S3 requests are its four tasks writing raw/part-0000<shard>,
        // and nothing else reaches S3 until they are written. 9 refusals: at least one task attempt fails (four
        // calls refused twice each make 8), at most three (each failure takes 3), fewer than maxTaskAttempts (4).
        onStep: (step, time) => {
          if (step === 'sealed' && ++sealed === 3) {
            burstAt = time;
            s3.refuseNext(9);
          }
        },
      });
      expect(result.runs.every((r) => !('error' in r))).toBe(true);
      expect(s3.refused()).toBe(9);
      for (const op of s3.refusedOperations()) expect(op).toMatch(new RegExp(`^PUT /${name}-out/raw-${burstAt}/part-0000[0-3]$`));
      const retried = result.logs.filter((l) =>
        new RegExp(`^warning: task result-${burstAt}-\\S+ partition [0-3] attempt \\d failed \\(S3: cannot put s3://${name}-out/raw-${burstAt}/part-0000[0-3]: Please reduce your request rate\\.\\); retrying$`).test(l),
      );
      expect(retried.length).toBeGreaterThanOrEqual(1);
      expect(retried.length).toBeLessThanOrEqual(3);
      await expectExactlyOnce(result);
    } finally {
      await stop();
    }
  }, 60_000);
});
