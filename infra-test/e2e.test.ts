import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { defineJob, type JobDefinition } from '../lib/api/job.ts';
import { type CoordinatorRun, createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import { type AwsConfig, dynamoClient, s3Client } from '../lib/aws/clients.ts';
import { DynamoMetaStore } from '../lib/aws/dynamoMetaStore.ts';
import { type AwsRuntimeConfig, awsCoordinatorRuntime, awsWorkerRuntime } from '../lib/aws/runtime.ts';
import type { CoordinatorRuntime, ProtocolStep } from '../lib/engine/coordinator.ts';
import { keys, type TaskDescriptor, type TaskResult } from '../lib/engine/protocol.ts';
import { runBatches } from '../lib/testing/index.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack } from './helpers/awsStack.ts';
import { SkewedClock } from './helpers/skewedClock.ts';
import { stalledWorker } from './helpers/stalledWorker.ts';
import { startThrottlingProxy, type ThrottledService, type ThrottlePolicy, type ThrottlingProxy } from './helpers/throttlingProxy.ts';

const LINES = Array.from({ length: 1800 }, (_, i) => `w${i % 13} x${i % 7} line${i}`);

/**
 * Raw lines and word counts of a Kinesis stream, both saved to S3 per batch. With `countWords:
 * false`, the raw lines only: then nothing else reads the stream, and the output is not computed
 * from a cached dataset unless the engine makes it one.
 */
function job(
  name: string,
  extra: { onRecordError?: 'fail' | 'dead-letter'; decode?: (b: Uint8Array) => string; maxTaskAttempts?: number; countWords?: boolean } = {},
): JobDefinition {
  return defineJob({ name, batchInterval: '400ms', onRecordError: extra.onRecordError, maxTaskAttempts: extra.maxTaskAttempts }, (ctx) => {
    const lines = ctx.kinesisStream(name, { initialPosition: 'TRIM_HORIZON', maxRecordsPerBatch: 120, decode: extra.decode });
    lines.saveAsTextFiles(`s3://${name}-out/raw`);
    if (extra.countWords === false) return;
    lines
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 3 })
      .saveAsTextFiles(`s3://${name}-out/counts`);
  });
}

/** A promise the test settles itself: whatever awaits `opened` goes on once `open()` is called. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** Whether a task reads a source split whose range is not sealed yet. */
function readsOpenSplit(task: TaskDescriptor): boolean {
  return Object.values(task.splits).some((parts) => Object.values(parts).some((split) => split.open === true));
}

/** Kinesis records a task consumed from the open splits it read (what it reported to seal). */
function consumed(result: TaskResult): number {
  let n = 0;
  for (const parts of Object.values(result.sealed ?? {})) for (const split of Object.values(parts)) n += split.count as number;
  return n;
}

/** Lines unlike the other inputs, `late0 w0 x0`, `late1 w1 x1`, … */
function lateLines(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `late${i} w${i % 13} x${i % 7}`);
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
  /** Set in every coordinator invocation's runtime: its clock, its lease, what travels inline. */
  readonly coordinator?: Partial<Pick<CoordinatorRuntime, 'clock' | 'leaseMs' | 'inlineLimit'>>;
  /** Awaited after the last invocation, before the output is read (work still running beside the coordinator). */
  readonly settle?: () => Promise<void>;
}

describe('end to end on emulated AWS: Kinesis in, Lambda coordinator and workers, DynamoDB lineage, S3 out', () => {
  let stack: AwsStack;
  beforeAll(async () => {
    stack = await startAwsStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /**
   * Creates the job's resources, puts its lines and registers its worker function. `invoke` runs
   * one coordinator invocation given `ms`, its runtime changed by `overrides` (an `onStep`, say);
   * `output` reads what the job saved.
   */
  async function deployJob(name: string, options: RunOptions = {}) {
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
    const invoke = (ms: number, overrides: Partial<CoordinatorRuntime> = {}) => {
      const handler = createCoordinatorHandler(
        async () => definition,
        (graph) => ({ ...awsCoordinatorRuntime(graph, config, (l) => logs.push(l)), retryBackoffMs: 5, ...options.coordinator, ...overrides }),
        { marginMs: 0, log: (l) => logs.push(l) },
      );
      return handler({}, { getRemainingTimeInMillis: () => ms }).catch((e: Error) => ({ error: e }) as const);
    };
    const output = async () => ({ raw: await readS3Batches(stack, `${name}-out`, 'raw'), counts: await readS3Batches(stack, `${name}-out`, 'counts') });
    return { config, logs, invoke, output };
  }

  async function runJob(name: string, options: RunOptions = {}) {
    const { logs, invoke, output } = await deployJob(name, options);
    let first = true;
    const invokeNext = (ms: number) => {
      const onStep = first ? options.onStep : undefined;
      first = false;
      return invoke(ms, { onStep });
    };
    // By default short invocations, as many as it takes to drain the stream (at most four).
    const plan = options.invocations ?? [2500, 2500, 2500, 2500];
    const untilDrained = options.untilDrained ?? options.invocations === undefined;
    const runs: (CoordinatorRun | { error: Error })[] = [];
    if (options.concurrent) runs.push(...(await Promise.all(plan.map(invokeNext))));
    else {
      for (const ms of plan) {
        runs.push(await invokeNext(ms));
        // As the schedule would, until the output holds every line.
        const expected = options.expectedLines ?? (options.lines ?? LINES).length;
        if (untilDrained && [...(await readS3Batches(stack, `${name}-out`, 'raw')).values()].flat().length >= expected) break;
      }
    }
    await options.settle?.();
    return { runs, logs, ...(await output()) };
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

  async function expectExactlyOnce(result: { raw: Map<number, string[]>; counts: Map<number, string[]> }, lines: readonly string[] = LINES, batches = 4) {
    const rawBatches = [...result.raw.values()];
    // Every record once, none twice, none missing.
    expect(rawBatches.flat().sort()).toEqual([...lines].sort());
    // Several batches drained the backlog (120 records per shard per batch).
    expect(rawBatches.filter((b) => b.length > 0).length).toBeGreaterThanOrEqual(batches);
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
    const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
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
  // Overlapping attempts: the coordinators' clock runs ahead of the arrival times Kinesis stamps, so
  // a batch's time is still to come when its input is cut (see SkewedClock): lines put after the cut
  // belong to the batch, and an open split read later holds more than the same split read at once.
  // A run that read it late and wrote where the accepted run wrote would show as lines counted twice.
  const AHEAD_MS = 3000;

  /** Batch directories under s3://<name>-out/ that hold parts but no _SUCCESS. */
  async function unfinishedOutputs(name: string): Promise<string[]> {
    const s3 = s3Client({ endpoint: stack.s3.endpoint });
    const found: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: `${name}-out`, ContinuationToken: token }));
      for (const o of page.Contents ?? []) found.push(o.Key!);
      token = page.NextContinuationToken;
    } while (token);
    const dirs = new Set(found.map((k) => k.slice(0, k.lastIndexOf('/'))));
    return [...dirs].filter((d) => !found.includes(`${d}/_SUCCESS`));
  }

  it.each([
    // The stream feeds two outputs, so it is computed once per batch by a cache stage; the counts go through a shuffle.
    { shape: 'raw lines and word counts', base: 'e2e-overlapping-duplicate', countWords: true },
    // The one output reads the stream itself: only the engine's rule that outputs read sealed input puts a cache stage first.
    { shape: 'raw lines only', base: 'e2e-overlapping-duplicate-raw', countWords: false },
  ])('a duplicate worker run overlapping the original, reading its open split after more lines arrived and writing after the commit, changes nothing ($shape)', async ({ base, countWords }) => {
    const name = stack.name(base);
    const definition = job(name, { countWords });
    const config = stack.config(name);
    const first = LINES.slice(0, 240);
    // 12 lines a round reach every shard (key-0 … key-11); one round per straggler that reads late.
    const late = lateLines(8 * 12);
    let rounds = 0;
    const times: number[] = [];
    // Per batch: the stragglers that read its open splits late, and a gate opened once it is committed.
    const lateReads = new Map<number, Promise<unknown>[]>();
    const committed = new Map<number, ReturnType<typeof gate>>();
    const readers: { original: TaskResult; straggler: Promise<unknown> }[] = [];
    const writers: Promise<unknown>[] = [];
    const result = await runJob(name, {
      job: definition,
      lines: first,
      expectedLines: first.length + late.length,
      // Shuffle output and cached partitions go to blobs (none travel inline), where a straggler could overwrite them.
      coordinator: { clock: new SkewedClock(AHEAD_MS), inlineLimit: 0 },
      worker: (run) => async (event) => {
        const task = event as TaskDescriptor;
        if (!times.includes(task.time)) {
          times.push(task.time);
          // Batches run one after another: a task of a later batch means the earlier ones are committed.
          for (const [t, committedGate] of committed) if (t < task.time) committedGate.open();
        }
        // Every task of the first two batches runs twice: the run that answers, and a straggler in a container of its own.
        if (times.indexOf(task.time) >= 2 || task.attempt > 0) return run(event);
        if (readsOpenSplit(task)) {
          // Both start now; the straggler's GetRecords waits until the original has answered and more lines arrived.
          const released = gate();
          const straggler = stalledWorker(definition, config, released.opened)(event);
          const answer = (await run(event)) as TaskResult;
          const round = late.slice(rounds * 12, ++rounds * 12);
          const landed = (async () => {
            await putLines(stack, name, round);
            released.open();
            return straggler;
          })();
          lateReads.set(task.time, [...(lateReads.get(task.time) ?? []), landed]);
          readers.push({ original: answer, straggler });
          return answer;
        }
        // The batch's later stages start once the late reads are written: an overwritten blob would be read.
        await Promise.all(lateReads.get(task.time) ?? []);
        if (task.stage.kind === 'result' && task.stage.action.kind === 'output') {
          // An output part: the straggler computes it now and writes it once the batch is committed.
          let after = committed.get(task.time);
          if (!after) committed.set(task.time, (after = gate()));
          writers.push(stalledWorker(definition, config, after.opened)(event));
        }
        return run(event);
      },
      settle: async () => {
        for (const g of committed.values()) g.open();
        await Promise.all([...readers.map((r) => r.straggler), ...writers]);
      },
    });
    expect(result.runs.every((r) => !('error' in r))).toBe(true);
    // One straggler per shard in each of the two batches read its open split late, and found more than the original had.
    expect(readers).toHaveLength(8);
    const lateAnswers = (await Promise.all(readers.map((r) => r.straggler))) as TaskResult[];
    expect(lateAnswers.map((a, i) => consumed(a) > consumed(readers[i].original))).toEqual(Array(8).fill(true));
    if (countWords) await expectExactlyOnce(result, [...first, ...late], 3);
    else {
      expect([...result.raw.values()].flat().sort()).toEqual([...first, ...late].sort());
      expect([...result.raw.values()].filter((b) => b.length > 0).length).toBeGreaterThanOrEqual(3);
    }
    expect(await unfinishedOutputs(name)).toEqual([]);
    // Four raw parts (and three count parts) per batch were written again, after their batch was committed.
    expect(writers).toHaveLength(countWords ? 14 : 8);
    for (const answer of await Promise.all(writers)) expect(answer).toMatchObject({ ok: true });
  }, 60_000);

  it('a coordinator frozen after cutting a batch is replaced once its lease runs out; resumed, it is fenced before it writes anything', async () => {
    const name = stack.name('e2e-coordinator-replaced');
    const clock = new SkewedClock(AHEAD_MS);
    const leaseMs = 1200;
    const first = LINES.slice(0, 600);
    const late = lateLines(40);
    const frozen = gate();
    const thaw = gate();
    let frozenAt = 0;
    let thawed = false;
    const tasks: { epoch: number; afterThaw: boolean }[] = [];
    const { config, logs, invoke, output } = await deployJob(name, {
      lines: first,
      coordinator: { clock, leaseMs },
      worker: (run) => async (event) => {
        tasks.push({ epoch: (event as TaskDescriptor).epoch, afterThaw: thawed });
        return run(event);
      },
    });
    const meta = new DynamoMetaStore({ client: dynamoClient(config.aws), table: config.table, job: name });
    const record = () => meta.get(keys.batch(frozenAt));

    // The first coordinator freezes after cutting its second batch's input, before writing the batch's lineage record.
    let cuts = 0;
    const old = invoke(10_000, {
      onStep: async (step, t) => {
        if (step !== 'cut' || ++cuts !== 2) return;
        frozenAt = t;
        frozen.open();
        await thaw.opened;
      },
    });
    await frozen.opened;
    // Its lease runs out; the next invocation takes the lease, then the batch, and goes on.
    clock.pass(leaseMs);
    let lateInTime = false;
    let forgotten = false;
    const next = invoke(2000, {
      onStep: async (step, t) => {
        if (step === 'commit' && t === frozenAt) {
          // Lines that arrive inside the frozen batch's time, after the new coordinator read it: a stale read of it holds them too.
          await putLines(stack, name, late);
          lateInTime = Date.now() < frozenAt;
        }
        if (step === 'cleanup' && t === frozenAt + 400) {
          // The batch is committed and its lineage record forgotten: the old coordinator can only create it anew.
          forgotten = (await record()) === undefined;
          thawed = true;
          thaw.open();
        }
      },
    });
    // Should the new coordinator stop before thawing the old one, thaw it anyway: the checks below then say what is missing.
    const [oldRun, nextRun] = await Promise.all([old, next.finally(thaw.open)]);
    expect(lateInTime).toBe(true);
    expect(forgotten).toBe(true);
    await expectExactlyOnce(await output(), [...first, ...late], 3);
    expect(await unfinishedOutputs(name)).toEqual([]);
    // Thawed, the old coordinator wrote the record again (creating an item is not fenced), could not renew its lease, and invoked no worker.
    const oldEpoch = tasks[0].epoch;
    expect(tasks.filter((t) => t.afterThaw && t.epoch === oldEpoch)).toEqual([]);
    expect((oldRun as { error: Error }).error.name).toBe('FencedError');
    expect((oldRun as { error: Error }).error.message).toBe(`job ${name}: could not renew the lease: another coordinator has taken over (this one's epoch ${oldEpoch} is fenced)`);
    expect(await record()).toMatchObject({ epoch: oldEpoch, value: { status: 'RUNNING' } });
    // The new coordinator cut the frozen batch itself (there was no record to recover) and went on past it.
    expect(nextRun).not.toHaveProperty('error');
    expect(nextRun).not.toHaveProperty('skipped');
    expect((nextRun as CoordinatorRun).lastCompleted).toBeGreaterThan(frozenAt);
    expect(logs.some((l) => /recovering batch/.test(l))).toBe(false);

    // The next minute's invocation finds the lease free, and the stray record too old to keep.
    const after = await invoke(800);
    expect(after).not.toHaveProperty('error');
    expect(after).not.toHaveProperty('skipped');
    expect(await record()).toBeUndefined();
    await expectExactlyOnce(await output(), [...first, ...late], 3);
  }, 60_000);
});
