import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineJob, type JobDefinition } from '../lib/api/job.ts';
import { awsCoordinatorRuntime } from '../lib/aws/coordinatorRuntime.ts';
import { type CoordinatorRun, createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import { type AwsRuntimeConfig, awsWorkerRuntime } from '../lib/aws/runtime.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack, wordTotals } from './helpers/awsStack.ts';
import { type ProxiedRequest, startThrottlingProxy, type ThrottledService, type ThrottlingProxy } from './helpers/throttlingProxy.ts';

// Quiet batches: a batch cut empty, with every stateful node at rest, runs inside the coordinator
// and writes nothing. A coordinator invocation that only runs such batches (an idle minute) takes
// the lease and releases it: two DynamoDB writes, no Lambda Invoke, no S3 request. Idle mode
// (`idleAfter`) goes further: once the job had no input that long, the invocation releases the
// lease marked idle and returns, and later ones only read (the lease, the checkpoint, the shards)
// until input comes. Every request the job makes is counted by a proxy, one per service, that
// refuses nothing.

const INTERVAL_MS = 200;
const WINDOW_MS = 1000;

/** Word counts of a Kinesis stream per batch, and over the last second at every batch, saved to S3. */
function wordCount(name: string) {
  return defineJob({ name, batchInterval: `${INTERVAL_MS}ms` }, (ctx) => {
    const pairs = ctx
      .kinesisStream(name, { initialPosition: 'TRIM_HORIZON' })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number]);
    pairs.reduceByKey((a, b) => a + b, { numPartitions: 4 }).saveAsTextFiles(`s3://${name}-out/counts`);
    pairs.reduceByKeyAndWindow((a, b) => a + b, `${WINDOW_MS}ms`, `${INTERVAL_MS}ms`).saveAsTextFiles(`s3://${name}-out/windowed`);
  });
}

const IDLE_AFTER_MS = 1000;

/** Word counts of a Kinesis stream per batch, saved to S3; idle mode after a second without input. Stateless: nothing keeps it awake. */
function idleWordCount(name: string) {
  return defineJob({ name, batchInterval: `${INTERVAL_MS}ms`, idleAfter: `${IDLE_AFTER_MS}ms` }, (ctx) => {
    ctx
      .kinesisStream(name, { initialPosition: 'TRIM_HORIZON' })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 4 })
      .saveAsTextFiles(`s3://${name}-out/counts`);
  });
}

/** Resolves once `condition` holds, checking every 10 ms; fails after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Operations that change a DynamoDB table. */
const DYNAMO_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);
const SERVICES = ['dynamodb', 's3', 'lambda', 'kinesis'] as const satisfies readonly ThrottledService[];
type Service = (typeof SERVICES)[number];

/** Per service, how many requests of each operation the proxies received since `since`. */
function countsSince(proxies: Record<Service, ThrottlingProxy>, since: Record<Service, number>): Record<Service, Record<string, number>> {
  const out = {} as Record<Service, Record<string, number>>;
  for (const s of SERVICES) {
    const ops: Record<string, number> = {};
    for (const op of proxies[s].operations().slice(since[s])) ops[op] = (ops[op] ?? 0) + 1;
    out[s] = ops;
  }
  return out;
}

/**
 * What a DynamoDB write of the meta store (UpdateItem) wrote: its item's sort key, and the lease's
 * owner and quiet run; `idle: true` only when the quiet run marks the job idle (idle mode).
 */
function leaseWrite(r: ProxiedRequest): { key: string; owner?: string; quietThrough?: number; idle?: true } {
  const input = JSON.parse(r.body) as { Key: { sk: { S: string } }; ExpressionAttributeValues?: Record<string, { S?: string }> };
  const value = JSON.parse(input.ExpressionAttributeValues?.[':val']?.S ?? '{}') as { owner?: string; quiet?: { through: number; idle?: boolean } };
  return { key: input.Key.sk.S, owner: value.owner, quietThrough: value.quiet?.through, ...(value.quiet?.idle === true ? { idle: true as const } : {}) };
}

/**
 * The job behind one proxy per service, its worker registered with the Lambda endpoint, and
 * `invoke(ms)`: one coordinator invocation given `ms`, as the scheduled function runs it, returning
 * what it did, the requests it made per service and operation, its DynamoDB writes, its S3
 * requests and the batch times it cut (in order). `stop` closes the proxies.
 */
async function proxiedJob(stack: AwsStack, name: string, job: JobDefinition) {
  const emulated = stack.config(name);
  const endpoint = emulated.aws!.endpoint as Record<Service, string>;
  const proxies = {} as Record<Service, ThrottlingProxy>;
  const stop = async () => {
    for (const p of Object.values(proxies)) await p.stop();
  };
  try {
    for (const s of SERVICES) proxies[s] = await startThrottlingProxy(endpoint[s], s, {});
  } catch (e) {
    await stop();
    throw e;
  }
  const proxied = Object.fromEntries(SERVICES.map((s) => [s, proxies[s].endpoint])) as Record<Service, string>;
  const config: AwsRuntimeConfig = { ...emulated, aws: { ...emulated.aws, endpoint: proxied, retryDelayMs: 5 } };
  // Small batches run inside the coordinator: the worker is there, but should never be asked.
  stack.lambda.register(
    config.workerFunction!,
    createWorkerHandler(async () => job, (graph) => awsWorkerRuntime(graph, config)),
  );
  const logs: string[] = [];
  const invoke = async (ms: number) => {
    const before = Object.fromEntries(SERVICES.map((s) => [s, proxies[s].operations().length])) as Record<Service, number>;
    const dynamoBefore = proxies.dynamodb.requests().length;
    const s3Before = proxies.s3.requests().length;
    const cuts: number[] = [];
    const handler = createCoordinatorHandler(
      async () => job,
      (graph) => ({
        ...awsCoordinatorRuntime(graph, config, (l) => logs.push(l)),
        retryBackoffMs: 5,
        onStep: (step, t) => {
          if (step === 'cut') cuts.push(t);
        },
      }),
      { marginMs: 0, log: (l) => logs.push(l) },
    );
    const run: CoordinatorRun = await handler({}, { getRemainingTimeInMillis: () => ms });
    const requests = countsSince(proxies, before);
    const dynamoWrites = proxies.dynamodb
      .requests()
      .slice(dynamoBefore)
      .filter((r) => DYNAMO_WRITES.has(r.operation));
    return { run, requests, dynamoWrites, s3: proxies.s3.requests().slice(s3Before), cuts };
  };
  return { invoke, logs, stop };
}


/** The words of `lines`, counted here, not by the engine. */
function wordsOf(lines: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) for (const w of l.split(' ')) out[w] = (out[w] ?? 0) + 1;
  return out;
}

describe('an idle minute on emulated AWS (Kinesis, Lambda, DynamoDB, S3)', () => {
  let stack: AwsStack;
  beforeAll(async () => {
    stack = await startAwsStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('a coordinator invocation of quiet batches takes and releases the lease (2 DynamoDB writes), invokes no worker and makes no S3 request; the next input is counted once, windows included', async () => {
    // Prepare: a fresh 4-shard stream holding 40 lines, the job's requests counted per service.
    const name = stack.name('idle-minute');
    await createResources(stack, name, 4);
    const first = Array.from({ length: 40 }, (_, i) => `w${i % 11} x${i % 5}`);
    await putLines(stack, name, first);
    const { invoke, logs, stop } = await proxiedJob(stack, name, wordCount(name));
    try {
      /**
       * Whether the output holds the words of `lines` and the window has moved past the last batch
       * with input, by the time `run` completed its last batch (read from the emulator, not through the proxies).
       */
      const drained = async (lines: readonly string[], run: CoordinatorRun) => {
        const counts = [...(await readS3Batches(stack, `${name}-out`, 'counts'))].filter(([, l]) => l.length > 0);
        const have = wordTotals(counts.flatMap(([, l]) => l));
        const want = wordsOf(lines);
        if (Object.keys(have).length !== Object.keys(want).length || Object.entries(want).some(([w, n]) => have[w] !== n)) return false;
        return run.lastCompleted >= Math.max(...counts.map(([t]) => t)) + WINDOW_MS - INTERVAL_MS;
      };
      /** Invocations after `first`, as the schedule would start them, until `lines` are drained (at most four more). */
      const untilDrained = async (lines: readonly string[], first: CoordinatorRun) => {
        let last = first;
        for (let i = 0; i < 4 && !(await drained(lines, last)); i++) last = (await invoke(1500)).run;
        expect(await drained(lines, last)).toBe(true);
      };

      // Act: invocation 1 reads the 40 lines and runs the window over them; the window drains, in
      // that invocation or the next (on a loaded machine, a few more). The next invocation ends on
      // quiet batches; the one after it, the idle minute, has nothing to do.
      const busy = await invoke(1500);
      await untilDrained(first, busy.run);
      const settled = await invoke(1500);
      const idle = await invoke(4000);

      // Assess: every invocation ran, taking the lease over from the last; small batches ran inside the coordinator.
      expect(busy.run.skipped).toBeUndefined();
      expect(busy.run.batches).toBeGreaterThanOrEqual(1);
      expect(busy.requests.lambda.Invoke ?? 0).toBe(0);
      expect(logs.some((l) => l.includes('tasks run inside the coordinator'))).toBe(true);
      expect(settled.run.skipped).toBeUndefined();

      // Assess: the idle minute ran its batches on schedule and only took and released the lease.
      expect(idle.run.skipped).toBeUndefined();
      expect(idle.run.batches).toBeGreaterThanOrEqual(10);
      expect(idle.run.lastCompleted).toBeGreaterThan(settled.run.lastCompleted);
      expect(idle.requests.lambda).toEqual({});
      expect(idle.dynamoWrites.map(leaseWrite)).toEqual([
        { key: 'lease', owner: expect.stringMatching(/^lambda:/), quietThrough: settled.run.lastCompleted },
        { key: 'lease', owner: '', quietThrough: idle.run.lastCompleted },
      ]);
      // S3: nothing. No quiet batch asks anything, and a coordinator that takes an idle job's
      // cleanly released lease does not sweep (nothing was written since the last one's).
      expect(idle.s3.map((r) => `${r.method} ${decodeURIComponent(r.url)}`)).toEqual([]);

      // Act: 30 lines more, and an invocation that reads them (and, on a loaded machine, more until the window drains again).
      const second = Array.from({ length: 30 }, (_, i) => `v${i % 7} y${i % 3}`);
      await putLines(stack, name, second);
      const woken = await invoke(3000);
      await untilDrained([...first, ...second], woken.run);

      // Assess: the invocation ran batches past the idle minute's, and read the new lines.
      expect(woken.run.skipped).toBeUndefined();
      expect(woken.run.batches).toBeGreaterThanOrEqual(1);
      expect(woken.run.lastCompleted).toBeGreaterThan(idle.run.lastCompleted);
      // 30 lines are a small batch: it runs in the coordinator, as any batch cut small does after quiet ones.
      expect(woken.requests.lambda.Invoke ?? 0).toBe(0);
      const counts = await readS3Batches(stack, `${name}-out`, 'counts');
      // (On a loaded machine the drain invocations after it may count some of them.)
      expect([...counts].filter(([t, lines]) => t > idle.run.lastCompleted && lines.length > 0).length).toBeGreaterThanOrEqual(1);

      // Assess: every word of the 70 lines counted exactly once over all batches.
      expect(wordTotals([...counts.values()].flat())).toEqual(wordsOf([...first, ...second]));
      // The new lines were read in batches after the idle minute's last.
      const countedAfterIdle = [...counts].filter(([t]) => t > idle.run.lastCompleted).flatMap(([, lines]) => lines);
      expect(wordTotals(countedAfterIdle)).toEqual(wordsOf(second));

      // Assess: each window saved is the counts of the batches in (T - 1 s, T], and every window with content was saved.
      const windowed = await readS3Batches(stack, `${name}-out`, 'windowed');
      const expectedAt = (T: number) => wordTotals([...counts].filter(([t]) => t > T - WINDOW_MS && t <= T).flatMap(([, lines]) => lines));
      const withContent = new Set<number>();
      for (const [t, lines] of counts) if (lines.length > 0) for (let T = t; T < t + WINDOW_MS; T += INTERVAL_MS) withContent.add(T);
      expect(withContent.size).toBeGreaterThan(0);
      for (const T of new Set([...windowed.keys(), ...withContent])) expect([T, wordTotals(windowed.get(T) ?? [])]).toEqual([T, expectedAt(T)]);
      // The last window with content is the last one the last batch with input is in.
      const lastWindow = Math.max(...[...windowed].filter(([, lines]) => lines.length > 0).map(([T]) => T));
      const lastInput = Math.max(...[...counts].filter(([, lines]) => lines.length > 0).map(([t]) => t));
      expect(lastWindow).toBe(lastInput + WINDOW_MS - INTERVAL_MS);
    } finally {
      await stop();
    }
  }, 60_000);

  it('idle mode: once idleAfter passes without input the invocation returns early and releases the lease marked idle; each later invocation only looks — no DynamoDB write, no S3 request, no Invoke — until input comes, which the next invocation runs from the batch due then, counted once', async () => {
    // Prepare: a fresh 4-shard stream holding 20 lines, a stateless job idle after a second without input.
    const name = stack.name('idle-mode');
    await createResources(stack, name, 4);
    const first = Array.from({ length: 20 }, (_, i) => `a${i % 7} b${i % 3}`);
    await putLines(stack, name, first);
    const { invoke, stop } = await proxiedJob(stack, name, idleWordCount(name));
    try {
      // Act: invocation A reads the 20 lines, then runs quiet batches until the job is idle.
      const a = await invoke(8000);

      // Assess: A returned idle, a second of batch times after its last input, long before its time was up.
      expect(a.run.skipped).toBeUndefined();
      expect(a.run.idle).toBe(true);
      expect(a.run.batches).toBeLessThan(30);
      const afterA = await readS3Batches(stack, `${name}-out`, 'counts');
      expect(wordTotals([...afterA.values()].flat())).toEqual(wordsOf(first));
      const lastInputA = Math.max(...[...afterA].filter(([, lines]) => lines.length > 0).map(([t]) => t));
      expect(a.run.lastCompleted).toBe(lastInputA + IDLE_AFTER_MS);
      expect(a.cuts).toEqual(Array.from({ length: a.run.batches }, (_, i) => a.run.lastCompleted - (a.run.batches - 1 - i) * INTERVAL_MS));
      // The lease's last write released it, marked idle, with the quiet run through A's last batch.
      const leaseWrites = a.dynamoWrites
        .filter((r) => r.operation === 'UpdateItem')
        .map(leaseWrite)
        .filter((w) => w.key === 'lease');
      expect(leaseWrites.at(-1)).toEqual({ key: 'lease', owner: '', quietThrough: a.run.lastCompleted, idle: true });

      // Act: two more invocations, no new input: each only looks.
      const b = await invoke(2000);
      const c = await invoke(2000);

      // Assess: each look found the job idle and wrote nothing anywhere: it read the pause record, the lease, the checkpoint and the shards.
      for (const look of [b, c]) {
        expect(look.run).toEqual({ batches: 0, idle: true, lastCompleted: a.run.lastCompleted });
        expect(look.cuts).toEqual([]);
        expect(look.dynamoWrites.map((r) => r.operation)).toEqual([]);
        expect(look.s3.map((r) => `${r.method} ${decodeURIComponent(r.url)}`)).toEqual([]);
        expect(look.requests.lambda).toEqual({});
        expect(look.requests.s3).toEqual({});
        // The pause record (sluice pause), the lease and the checkpoint; one listing, and one iterator and one read per shard.
        expect(look.requests.dynamodb).toEqual({ GetItem: 3 });
        expect(look.requests.kinesis).toEqual({ ListShards: 1, GetShardIterator: 4, GetRecords: 4 });
      }

      // Act: a few batch times after A's last (so that a replay of the idle period would show), 15
      // lines more, then at once invocation D. Its look reads up to now: lines that came after the
      // batch due at that moment wake the job too (they go in the batch after it).
      const due = () => Math.floor(Date.now() / INTERVAL_MS) * INTERVAL_MS;
      await until(() => due() >= a.run.lastCompleted + 3 * INTERVAL_MS);
      const second = Array.from({ length: 15 }, (_, i) => `c${i % 5} a${i % 4}`);
      await putLines(stack, name, second);
      const noted = Date.now();
      const lookedAt = noted;
      const d = await invoke(5000);

      // Assess: D found the input, took the lease and ran from the batch due when it started: the batch
      // times of the idle period were skipped, not replayed.
      expect(d.run.skipped).toBeUndefined();
      expect(d.run.batches).toBeGreaterThanOrEqual(1);
      expect(d.cuts.length).toBe(d.run.batches);
      expect(d.cuts[0]).toBeGreaterThanOrEqual(lookedAt - INTERVAL_MS);
      expect(d.cuts[0]).toBeGreaterThan(a.run.lastCompleted + INTERVAL_MS);
      expect(d.cuts).toEqual(Array.from({ length: d.run.batches }, (_, i) => d.cuts[0] + i * INTERVAL_MS));
      expect(d.requests.lambda.Invoke ?? 0).toBe(0);
      const counts = await readS3Batches(stack, `${name}-out`, 'counts');
      const withInput = [...counts].filter(([t, lines]) => t > a.run.lastCompleted && lines.length > 0).map(([t]) => t);
      expect(withInput.length).toBeGreaterThanOrEqual(1);
      const firstNew = Math.min(...withInput);
      expect(firstNew).toBeGreaterThanOrEqual(noted - INTERVAL_MS);
      // D's first batch counted them, or its second when they came after the first one's time.
      expect(d.cuts.slice(0, 2)).toContain(firstNew);
      expect([...counts.keys()].filter((t) => t > a.run.lastCompleted && t < firstNew)).toEqual([]);
      // ... and went idle again a second after its input.
      expect(d.run.idle).toBe(true);
      expect(d.run.lastCompleted).toBe(Math.max(...withInput) + IDLE_AFTER_MS);

      // Assess: every word of the 35 lines counted exactly once over all batches; the new ones after A's.
      expect(wordTotals([...counts.values()].flat())).toEqual(wordsOf([...first, ...second]));
      expect(wordTotals([...counts].filter(([t]) => t > a.run.lastCompleted).flatMap(([, lines]) => lines))).toEqual(wordsOf(second));
    } finally {
      await stop();
    }
  }, 30_000);
});
