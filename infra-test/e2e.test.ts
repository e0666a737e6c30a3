import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { RecordError } from '../lib/core/errors.ts';
import { defineJob, type JobDefinition } from '../lib/api/job.ts';
import { type CoordinatorHandlerOptions, type CoordinatorRun, createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import { type AwsConfig, dynamoClient, s3Client } from '../lib/aws/clients.ts';
import { DynamoMetaStore } from '../lib/aws/dynamoMetaStore.ts';
import { DEPLOYED_COORDINATOR } from '../lib/aws/lambda.ts';
import { awsCoordinatorRuntime } from '../lib/aws/coordinatorRuntime.ts';
import { type AwsRuntimeConfig, awsWorkerRuntime } from '../lib/aws/runtime.ts';
import type { CoordinatorRuntime, ProtocolStep } from '../lib/engine/coordinator.ts';
import { type Checkpoint, keys, type TaskDescriptor, type TaskResult } from '../lib/engine/protocol.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack } from './helpers/awsStack.ts';
import { DoomedContainer } from './helpers/killedWorker.ts';
import { HurriedClock, SkewedClock } from './helpers/skewedClock.ts';
import { stalledWorker } from './helpers/stalledWorker.ts';
import { startThrottlingProxy, type ThrottledService, type ThrottlePolicy, type ThrottlingProxy } from './helpers/throttlingProxy.ts';
import { containerWorker } from './helpers/workerContainer.ts';

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
  // Fanned out: these tests drive, kill and stall the worker Lambdas (infra-test/placement.test.ts runs batches inside the coordinator).
  return defineJob({ name, batchInterval: '400ms', onRecordError: extra.onRecordError, maxTaskAttempts: extra.maxTaskAttempts, coordinatorBatchRecords: 0 }, (ctx) => {
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
  /** Wraps the worker handler (crashes, duplicates); `config` is where the job's resources are. */
  readonly worker?: (run: (e: unknown) => Promise<unknown>, config: AwsRuntimeConfig) => (e: unknown) => Promise<unknown>;
  /** Called at protocol steps of the first coordinator invocation. */
  readonly onStep?: (step: ProtocolStep, time: number) => void | Promise<void>;
  /** Coordinator invocations, each given this much time (ms). */
  readonly invocations?: number[];
  /** Run the invocations at the same time instead of one after another. */
  readonly concurrent?: boolean;
  readonly job?: JobDefinition;
  /**
   * End once the output holds every line (`expectedLines` of them): the invocation that drains the
   * stream ends after that batch, and no further one is started. @default true unless `invocations` is given
   */
  readonly untilDrained?: boolean;
  /** Lines the output holds when the stream is drained. @default every line put */
  readonly expectedLines?: number;
  readonly lines?: readonly string[];
  /**
   * Endpoints the job's coordinator and workers use instead of the emulators' (throttling proxies).
   * Creating the resources, putting the lines and reading the output still go to the emulators.
   */
  readonly endpoints?: { readonly s3?: string; readonly dynamodb?: string; readonly kinesis?: string };
  /**
   * Set in every coordinator invocation's runtime: what travels inline, the lease, and the clock
   * (by default a {@link HurriedClock} per job: batches run back to back, not 400 ms apart).
   */
  readonly coordinator?: Partial<Pick<CoordinatorRuntime, 'leaseMs' | 'inlineLimit' | 'quietBatches'>> & { readonly clock?: SkewedClock };
  /** Awaited after the last invocation, before the output is read (work still running beside the coordinator). */
  readonly settle?: () => Promise<void>;
}

/** The job's retries of AWS calls come this long apart (the attempts stay as in production): emulators need no time to recover. */
const RETRY_DELAY_MS = 5;

/** Word counts of a batch's raw lines, as the counts output writes them (`(word,n)`), sorted; counted here, not by the engine. */
function wordCounts(lines: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) for (const word of line.split(' ')) counts.set(word, (counts.get(word) ?? 0) + 1);
  return [...counts].map(([word, n]) => `(${word},${n})`).sort();
}

describe('end to end on emulated AWS: Kinesis in, Lambda coordinator and workers, DynamoDB lineage, S3 out', () => {
  let stack: AwsStack;
  beforeAll(async () => {
    stack = await startAwsStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Lines of a committed batch under s3://<name>-out/raw-<time>/. */
  async function savedLines(name: string, time: number): Promise<number> {
    const s3 = s3Client({ endpoint: stack.s3.endpoint });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: `${name}-out`, Prefix: `raw-${time}/part-` }));
    let lines = 0;
    for (const o of listed.Contents ?? []) {
      const body = await (await s3.send(new GetObjectCommand({ Bucket: `${name}-out`, Key: o.Key }))).Body!.transformToString();
      lines += body.split('\n').filter((l) => l !== '').length;
    }
    return lines;
  }

  /**
   * Creates the job's resources, puts its lines and registers its worker function. `invoke` runs
   * one coordinator invocation given `ms`, its runtime changed by `overrides` (an `onStep`, say),
   * with the handler's `options` (by default no margin, no lease wait); `output` reads what the job
   * saved; `endWhenDrained` makes an invocation end once the output holds every line.
   */
  async function deployJob(name: string, options: RunOptions = {}) {
    await createResources(stack, name, 4);
    const placed = await putLines(stack, name, options.lines ?? LINES);
    const emulated = stack.config(name);
    // stackConfig gives one endpoint per service; the overrides replace some of them for the job only.
    const perService = emulated.aws!.endpoint as Exclude<NonNullable<AwsConfig['endpoint']>, string>;
    const config: AwsRuntimeConfig = { ...emulated, aws: { ...emulated.aws, endpoint: { ...perService, ...options.endpoints }, retryDelayMs: RETRY_DELAY_MS } };
    const definition = options.job ?? job(name);
    const worker = createWorkerHandler(async () => definition, (graph) => awsWorkerRuntime(graph, config));
    stack.lambda.register(config.workerFunction!, options.worker ? options.worker(worker, config) : worker);
    const logs: string[] = [];
    const invoke = (ms: number, overrides: Partial<CoordinatorRuntime> = {}, handlerOptions: CoordinatorHandlerOptions = { marginMs: 0 }) => {
      const handler = createCoordinatorHandler(
        async () => definition,
        (graph) => ({ ...awsCoordinatorRuntime(graph, config, (l) => logs.push(l)), retryBackoffMs: 5, ...options.coordinator, ...overrides }),
        { ...handlerOptions, log: (l) => logs.push(l) },
      );
      return handler({}, { getRemainingTimeInMillis: () => ms }).catch((e: Error) => ({ error: e }) as const);
    };
    const output = async () => ({ raw: await readS3Batches(stack, `${name}-out`, 'raw'), counts: await readS3Batches(stack, `${name}-out`, 'counts') });
    // Lines saved by the batches committed so far, each batch counted once, whichever invocation committed it.
    const expected = options.expectedLines ?? (options.lines ?? LINES).length;
    const counted = new Set<number>();
    let saved = 0;
    const drained = () => saved >= expected;
    /**
     * A protocol step hook for an invocation given `ms` on `clock`: after each batch it counts the
     * lines that batch saved; once the output holds every line, it moves the clock past the
     * invocation's deadline, so the coordinator starts no further batch and hands the lease over,
     * as it does when its time runs out.
     */
    const endWhenDrained = (clock: SkewedClock, ms: number) => async (step: ProtocolStep, time: number) => {
      if (step !== 'cleanup' || counted.has(time)) return;
      counted.add(time);
      saved += await savedLines(name, time);
      if (drained()) clock.pass(ms);
    };
    return { config, logs, invoke, output, placed, drained, endWhenDrained };
  }

  async function runJob(name: string, options: RunOptions = {}) {
    const { logs, invoke, output, drained, endWhenDrained } = await deployJob(name, options);
    // By default short invocations, as many as it takes to drain the stream (at most four).
    const plan = options.invocations ?? [2500, 2500, 2500, 2500];
    const untilDrained = options.untilDrained ?? options.invocations === undefined;
    const clock = options.coordinator?.clock ?? new HurriedClock();
    let first = true;
    const invokeNext = (ms: number) => {
      const onStep = first ? options.onStep : undefined;
      first = false;
      const ending = untilDrained ? endWhenDrained(clock, ms) : undefined;
      return invoke(ms, {
        clock,
        onStep: async (step, time) => {
          await onStep?.(step, time);
          await ending?.(step, time);
        },
      });
    };
    const runs: (CoordinatorRun | { error: Error })[] = [];
    if (options.concurrent) runs.push(...(await Promise.all(plan.map(invokeNext))));
    else {
      for (const ms of plan) {
        runs.push(await invokeNext(ms));
        // As the schedule would, until the output holds every line.
        if (untilDrained && drained()) break;
      }
    }
    await options.settle?.();
    return { runs, logs, ...(await output()) };
  }

  async function expectExactlyOnce(result: { raw: Map<number, string[]>; counts: Map<number, string[]> }, lines: readonly string[] = LINES, batches = 4) {
    const rawBatches = [...result.raw.values()];
    // Every record once, none twice, none missing.
    expect(rawBatches.flat().sort()).toEqual([...lines].sort());
    // Several batches drained the backlog (120 records per shard per batch).
    expect(rawBatches.filter((b) => b.length > 0).length).toBeGreaterThanOrEqual(batches);
    // Same batches in both outputs, and each batch's counts are its raw lines' words, counted.
    expect([...result.counts.keys()]).toEqual([...result.raw.keys()]);
    expect([...result.counts.values()].map((counted) => [...counted].sort())).toEqual(rawBatches.map(wordCounts));
  }

  /** A throttling proxy in front of each emulator named in `policies`, and their endpoints for {@link runJob}; the test stops them. */
  async function throttlingProxies(policies: Partial<Record<ThrottledService, ThrottlePolicy>>) {
    const targets: Record<ThrottledService, string> = { s3: stack.s3.endpoint, dynamodb: stack.dynamo.endpoint, kinesis: stack.kinesis.endpoint, lambda: stack.lambda.endpoint };
    const proxies: Partial<Record<ThrottledService, ThrottlingProxy>> = {};
    for (const service of Object.keys(policies) as ThrottledService[]) proxies[service] = await startThrottlingProxy(targets[service], service, policies[service]!);
    const endpoints = Object.fromEntries(Object.entries(proxies).map(([service, p]) => [service, p.endpoint])) as Partial<Record<ThrottledService, string>>;
    return { proxies, endpoints, stop: async () => void (await Promise.all(Object.values(proxies).map((p) => p.stop()))) };
  }

  it('a clean run: every record counted exactly once', async () => {
    const result = await runJob(stack.name('e2e-clean'));
    expect(result.runs.every((r) => !('error' in r))).toBe(true);
    await expectExactlyOnce(result);
    expect(result.logs.some((l) => l.includes('"_aws"') && l.includes('"InputRecords"'))).toBe(true);
  }, 60_000);

  /** Whether `bucket/key` is an object in the emulated S3. */
  async function objectExists(path: string): Promise<boolean> {
    const slash = path.indexOf('/');
    try {
      await s3Client({ endpoint: stack.s3.endpoint }).send(new HeadObjectCommand({ Bucket: path.slice(0, slash), Key: path.slice(slash + 1) }));
      return true;
    } catch {
      return false;
    }
  }

  it('a worker killed mid-task, after its write landed and before it answered, is retried; the output is unchanged', async () => {
    const name = stack.name('e2e-worker-dies');
    const definition = job(name);
    // One task of each kind that writes (a cached partition, a shuffle blob, an output part) is killed in its first run.
    const doomed = new Set(['cache', 'map', 'output']);
    const killed = new Set<string>();
    const deaths: { kind: string; landed: string[]; stored: boolean[] }[] = [];
    const result = await runJob(name, {
      job: definition,
      // Shuffle data and cached partitions go to S3 (none travel inline): every stage writes there.
      coordinator: { inlineLimit: 0 },
      worker: (run, config) => async (event) => {
        const task = event as TaskDescriptor;
        const kind = task.stage.kind === 'result' ? task.stage.action.kind : task.stage.kind;
        // Told apart by what it computes (an attempt number is shared by the result stages of one dataset).
        const id = `${task.time}/${task.partition}/${JSON.stringify(task.stage)}`;
        if (killed.has(id) || !doomed.delete(kind)) return run(event);
        killed.add(id);
        // A container of its own, killed once its first PutObject landed: the run never answers, Lambda reports the kill.
        const container = new DoomedContainer(1);
        try {
          return await container.invoke(containerWorker(definition, config, { s3: container.s3, kinesis: container.requests }), event);
        } finally {
          // Looked at before the coordinator hears of the death: what the killed run wrote is in S3.
          deaths.push({ kind, landed: [...container.landed], stored: await Promise.all(container.landed.map(objectExists)) });
        }
      },
    });
    expect(deaths.map((d) => d.kind).sort()).toEqual(['cache', 'map', 'output']);
    for (const death of deaths) {
      expect(death.landed).toHaveLength(1);
      expect(death.stored).toEqual([true]);
    }
    const retried = result.logs.filter((l) => /^warning: task \S+ partition \d+ attempt 1 failed \(.*Runtime\.ExitError: .*Runtime exited with error: signal: killed\); retrying$/.test(l));
    expect(retried).toHaveLength(3);
    expect(result.runs.every((r) => !('error' in r))).toBe(true);
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
      untilDrained: true,
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

  it('a second coordinator started while the first holds the lease stands aside at once without a lease wait (the handler’s default)', async () => {
    const result = await runJob(stack.name('e2e-two-coordinators'), { invocations: [6000, 6000], concurrent: true, untilDrained: true });
    const skipped = result.runs.filter((r) => 'skipped' in r && r.skipped);
    expect(skipped).toHaveLength(1);
    await expectExactlyOnce(result);
  }, 60_000);

  // The deployed coordinator (lib/aws/lambda.ts) waits up to DEPLOYED_COORDINATOR.waitForLeaseMs for
  // the lease. Each invocation here has a clock of its own that never waits (HurriedClock): the
  // 20 s wait takes no real time, and a waiting invocation is held only by what the test observes.

  it('as deployed, a coordinator invoked while the last one holds the lease waits, takes over when it is handed over, and goes on from its last batch', async () => {
    const name = stack.name('e2e-deployed-takes-over');
    const { invoke, output, endWhenDrained } = await deployJob(name);
    const committed = { first: [] as number[], second: [] as number[] };
    const secondWaiting = gate();
    const firstEnded = gate();
    let secondStarted = false;
    let leaseWaits = 0;
    let second: Promise<CoordinatorRun | { error: Error }> | undefined;
    // The second invocation's sleeps before it starts are its lease wait: each lasts until the first invocation has ended.
    const secondClock = new HurriedClock(async () => {
      if (secondStarted) return;
      leaseWaits++;
      secondWaiting.open();
      await firstEnded.opened;
    });
    const secondMs = DEPLOYED_COORDINATOR.marginMs + 60_000;
    const secondEnds = endWhenDrained(secondClock, secondMs);
    const startSecond = () =>
      invoke(
        secondMs,
        {
          clock: secondClock,
          onStep: async (step, t) => {
            secondStarted = true;
            if (step === 'commit') committed.second.push(t);
            await secondEnds(step, t);
          },
        },
        DEPLOYED_COORDINATOR,
      );
    // The first invocation has three batch intervals left; once it committed a batch (it holds the lease), the second is invoked.
    const firstClock = new HurriedClock();
    const firstMs = DEPLOYED_COORDINATOR.marginMs + 1200;
    const firstEnds = endWhenDrained(firstClock, firstMs);
    const first = invoke(
      firstMs,
      {
        clock: firstClock,
        onStep: async (step, t) => {
          await firstEnds(step, t);
          if (step !== 'commit') return;
          committed.first.push(t);
          if (second) return;
          second = startSecond();
          // Held until the second is waiting for the lease (or has ended without waiting).
          await Promise.race([secondWaiting.opened, second]);
        },
      },
      DEPLOYED_COORDINATOR,
    ).finally(firstEnded.open);
    const firstRun = await first;
    const secondRun = await second;

    expect(firstRun).not.toHaveProperty('error');
    expect(firstRun).not.toHaveProperty('skipped');
    expect(leaseWaits).toBeGreaterThanOrEqual(1);
    expect(secondRun).not.toHaveProperty('error');
    expect(secondRun).not.toHaveProperty('skipped');
    // The second went on from the first one's last batch: one batch after another, none twice, none skipped.
    const lastOfFirst = (firstRun as CoordinatorRun).lastCompleted;
    expect(committed.first.at(-1)).toBe(lastOfFirst);
    expect(committed.second[0]).toBe(lastOfFirst + 400);
    const times = [...committed.first, ...committed.second];
    expect(times.slice(1).map((t, i) => t - times[i])).toEqual(Array(times.length - 1).fill(400));
    const result = await output();
    expect([...result.raw.keys()]).toEqual(times);
    await expectExactlyOnce(result);
  }, 60_000);

  it('as deployed, a coordinator invoked while the last one keeps the lease past the wait stands aside; the holder goes on', async () => {
    const name = stack.name('e2e-deployed-stands-aside');
    const { invoke, output, endWhenDrained } = await deployJob(name);
    const holding = gate();
    const release = gate();
    // The holder stops after its first commit, keeping the lease, until the test releases it.
    const firstClock = new HurriedClock();
    const firstMs = DEPLOYED_COORDINATOR.marginMs + 10_000;
    const firstEnds = endWhenDrained(firstClock, firstMs);
    let held = false;
    const first = invoke(
      firstMs,
      {
        clock: firstClock,
        onStep: async (step, t) => {
          if (step === 'commit' && !held) {
            held = true;
            holding.open();
            await release.opened;
          }
          await firstEnds(step, t);
        },
      },
      DEPLOYED_COORDINATOR,
    );
    await holding.opened;
    const secondClock = new HurriedClock();
    const secondMs = DEPLOYED_COORDINATOR.marginMs + 10_000;
    const invoked = secondClock.now();
    const secondRun = await invoke(secondMs, { clock: secondClock, onStep: endWhenDrained(secondClock, secondMs) }, DEPLOYED_COORDINATOR);
    const waited = secondClock.now() - invoked;
    release.open();
    const firstRun = await first;

    expect(secondRun).toMatchObject({ batches: 0, skipped: expect.stringMatching(/^job \S+ is already running: coordinator \S+ holds the lease until /) });
    expect(waited).toBeGreaterThanOrEqual(DEPLOYED_COORDINATOR.waitForLeaseMs);
    // The holder kept its lease: it was never fenced, and drained the stream.
    expect(firstRun).not.toHaveProperty('error');
    expect((firstRun as CoordinatorRun).batches).toBeGreaterThanOrEqual(4);
    await expectExactlyOnce(await output());
  }, 60_000);

  const strict = (b: Uint8Array) => {
    const text = new TextDecoder().decode(b);
    if (text.startsWith('bad')) throw new Error(`cannot decode ${JSON.stringify(text)}`);
    return text;
  };
  // The first bad record is the 196th record of its shard: two batches of up to 120 records come before the one that holds it.
  const withBad = [...LINES.slice(0, 1200), 'bad record one', ...LINES.slice(1200), 'bad record two'];

  it("a record the decoder rejects goes to dead letters with onRecordError: 'dead-letter'; the rest is counted exactly once", async () => {
    const name = stack.name('e2e-dead-letter');
    const result = await runJob(name, { job: job(name, { onRecordError: 'dead-letter', decode: strict }), lines: withBad, expectedLines: LINES.length });
    expect(result.runs.every((r) => !('error' in r))).toBe(true);
    await expectExactlyOnce(result);
    // Dead letters are JSON lines under <job>/dead-letters/<batch time>/ in the state bucket.
    const s3 = s3Client({ endpoint: stack.s3.endpoint });
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
    const { config, invoke, output, placed } = await deployJob(name, { job: job(name, { decode: strict, maxTaskAttempts: 2 }), lines: withBad });
    const meta = new DynamoMetaStore({ client: dynamoClient(config.aws), table: config.table, job: name });
    const clock = new HurriedClock();
    const expectFailure = (run: CoordinatorRun | { error: Error }) => {
      const error = (run as { error?: RecordError }).error;
      expect(error?.name).toBe('RecordError');
      expect(error?.message).toMatch(/the decoder threw on record \d+ of shard shardId-\d+ of Kinesis stream e2e-decoder-fails: cannot decode "bad record one"/);
      return error!.batchTime!;
    };
    const failedAt = expectFailure(await invoke(2500, { clock }));

    // The checkpoint stops at the batch before the failed one; every saved batch is before it.
    expect((await meta.get<Checkpoint>(keys.checkpoint))?.value.lastCompleted).toBe(failedAt - 400);
    const { raw } = await output();
    expect(raw.size).toBeGreaterThan(0);
    expect([...raw.keys()].filter((t) => t >= failedAt)).toEqual([]);
    // Per shard, the lines saved are the shard's first lines, in the order they were put, none twice: the failed batch
    // starts right after them. On the bad record's shard, that batch holds the bad record (it reads at most 120 records).
    const saved = [...raw.values()].flat();
    expect(new Set(saved).size).toBe(saved.length);
    const savedSet = new Set(saved);
    const shards = new Map<string, string[]>();
    for (const { line, shard } of placed) shards.set(shard, [...(shards.get(shard) ?? []), line]);
    let savedInShards = 0;
    for (const [shard, lines] of shards) {
      const before = lines.filter((l) => savedSet.has(l)).length;
      expect({ shard, saved: lines.filter((l) => savedSet.has(l)) }).toEqual({ shard, saved: lines.slice(0, before) });
      savedInShards += before;
      const bad = lines.indexOf('bad record one');
      if (bad >= 0) {
        expect(before).toBeLessThanOrEqual(bad);
        expect(bad - before).toBeLessThan(120);
      }
    }
    expect(savedInShards).toBe(saved.length);

    // The next invocation tries the failed batch again, fails the same way, and commits nothing either.
    expect(expectFailure(await invoke(2500, { clock }))).toBe(failedAt);
    expect((await meta.get<Checkpoint>(keys.checkpoint))?.value.lastCompleted).toBe(failedAt - 400);
    expect((await output()).raw).toEqual(raw);
  }, 60_000);

  it('throttled worker invocations are retried; the output is unchanged', async () => {
    stack.lambda.throttleNext(6);
    const result = await runJob(stack.name('e2e-throttled'));
    await expectExactlyOnce(result);
  }, 60_000);

  // Throttling on S3, DynamoDB and Kinesis: real HTTP through proxies that answer some requests with
  // the service's own throttling error. One layer retries each call (lib/aws/clients.ts): the SDK
  // retries S3 (3 attempts in all); the meta store, the Kinesis source and the invoker retry their own
  // calls. Here retries come RETRY_DELAY_MS apart instead of the standard backoff (up to 1 s × 2^n for a throttle).
  // Only the job's clients go through the proxies.

  it('throttling on every service (S3, DynamoDB, Kinesis and Lambda) is retried; the output is unchanged', async () => {
    // Every 7th request. The coordinator calls one at a time, so its retry is the next request and goes through;
    // a worker's retry may meet another refusal when other tasks' requests come in between: it is retried again.
    const { proxies, endpoints, stop } = await throttlingProxies({ s3: { every: 7 }, dynamodb: { every: 7 }, kinesis: { every: 7 } });
    try {
      const lambdaBefore = stack.lambda.throttled();
      stack.lambda.throttleNext(6);
      // Six batch times at the least, seven as a rule: the fullest shard holds 678 of the lines, six batches of up to 120.
      // Seven batch intervals per invocation: when throttling costs a batch, a later invocation goes on with the backlog.
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

  it('a burst of DynamoDB throttling is absorbed by the meta store’s retries; the run goes on', async () => {
    // The DynamoDB client makes one attempt per request; the commit's 5th (the meta store's 4th retry) goes through.
    const { result, burstAt, refused } = await dynamoBurst('e2e-dynamo-burst', 4);
    expect(burstAt).toBeDefined();
    expect(refused).toEqual(['UpdateItem', 'UpdateItem', 'UpdateItem', 'UpdateItem']);
    expect(result.runs[0]).not.toHaveProperty('error');
    expect(result.logs.some((l) => /recovering batch/.test(l))).toBe(false);
    await expectExactlyOnce(result);
  }, 60_000);

  it('DynamoDB throttled past every retry fails the coordinator invocation with an error naming the table; the next one resumes', async () => {
    // 7 attempts of one request each (the meta store's retries are the only ones): the commit fails; the lease release after it goes through.
    const { result, burstAt, refused } = await dynamoBurst('e2e-dynamo-stuck', 7);
    expect(refused).toEqual(Array(7).fill('UpdateItem'));
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
      // Every batch recorded: the frozen batch's cut becomes a lineage record. (Cut as a quiet
      // batch, it would write none: the frozen coordinator checks its lease before it reads.)
      coordinator: { clock, leaseMs, quietBatches: false },
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
