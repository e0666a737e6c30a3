import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineJob } from '../lib/api/job.ts';
import { awsCoordinatorRuntime } from '../lib/aws/coordinatorRuntime.ts';
import { type CoordinatorRun, createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import { type AwsRuntimeConfig, awsWorkerRuntime } from '../lib/aws/runtime.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack } from './helpers/awsStack.ts';
import { type ProxiedRequest, startThrottlingProxy, type ThrottledService, type ThrottlingProxy } from './helpers/throttlingProxy.ts';

// Quiet batches: a batch cut empty, with every stateful node at rest, runs inside the coordinator
// and writes nothing. A coordinator invocation that only runs such batches (an idle minute) takes
// the lease and releases it: two DynamoDB writes, no Lambda Invoke; S3 sees only the listing every
// coordinator makes once when it starts. Every request the job makes is counted by a proxy, one per
// service, that refuses nothing.

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

/** What a DynamoDB write of the meta store (UpdateItem) wrote: its item's sort key, and the lease's owner and quiet run. */
function leaseWrite(r: ProxiedRequest): { key: string; owner?: string; quietThrough?: number } {
  const input = JSON.parse(r.body) as { Key: { sk: { S: string } }; ExpressionAttributeValues?: Record<string, { S?: string }> };
  const value = JSON.parse(input.ExpressionAttributeValues?.[':val']?.S ?? '{}') as { owner?: string; quiet?: { through: number } };
  return { key: input.Key.sk.S, owner: value.owner, quietThrough: value.quiet?.through };
}

/** Totals per word over `(word,n)` lines. */
function sum(counts: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of counts) {
    const [, word, n] = /^\((.*),(\d+)\)$/.exec(c)!;
    out[word] = (out[word] ?? 0) + Number(n);
  }
  return out;
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

  it('a coordinator invocation of quiet batches takes and releases the lease (2 DynamoDB writes), invokes no worker, and asks S3 for nothing but its start's listing; the next input is counted once, windows included', async () => {
    // Prepare: a fresh 4-shard stream holding 40 lines, the job's requests counted per service.
    const name = stack.name('idle-minute');
    await createResources(stack, name, 4);
    const first = Array.from({ length: 40 }, (_, i) => `w${i % 11} x${i % 5}`);
    await putLines(stack, name, first);
    const emulated = stack.config(name);
    const endpoint = emulated.aws!.endpoint as Record<Service, string>;
    const proxies = {} as Record<Service, ThrottlingProxy>;
    try {
      for (const s of SERVICES) proxies[s] = await startThrottlingProxy(endpoint[s], s, {});
      const proxied = Object.fromEntries(SERVICES.map((s) => [s, proxies[s].endpoint])) as Record<Service, string>;
      const config: AwsRuntimeConfig = { ...emulated, aws: { ...emulated.aws, endpoint: proxied, retryDelayMs: 5 } };
      const job = wordCount(name);
      // Small batches run inside the coordinator: the worker is there, but should never be asked.
      stack.lambda.register(
        config.workerFunction!,
        createWorkerHandler(async () => job, (graph) => awsWorkerRuntime(graph, config)),
      );
      const logs: string[] = [];
      /** One coordinator invocation given `ms`, as the scheduled function runs it; returns what it did and the requests it made. */
      const invoke = async (ms: number) => {
        const before = Object.fromEntries(SERVICES.map((s) => [s, proxies[s].operations().length])) as Record<Service, number>;
        const dynamoBefore = proxies.dynamodb.requests().length;
        const s3Before = proxies.s3.requests().length;
        const handler = createCoordinatorHandler(
          async () => job,
          (graph) => ({ ...awsCoordinatorRuntime(graph, config, (l) => logs.push(l)), retryBackoffMs: 5 }),
          { marginMs: 0, log: (l) => logs.push(l) },
        );
        const run: CoordinatorRun = await handler({}, { getRemainingTimeInMillis: () => ms });
        const requests = countsSince(proxies, before);
        const dynamoWrites = proxies.dynamodb
          .requests()
          .slice(dynamoBefore)
          .filter((r) => DYNAMO_WRITES.has(r.operation));
        return { run, requests, dynamoWrites, s3: proxies.s3.requests().slice(s3Before) };
      };

      // Act: invocation 1 reads the 40 lines and runs the window over them; invocation 2 sees the
      // window drain and goes quiet; invocation 3 has nothing to do.
      const busy = await invoke(1500);
      const draining = await invoke(1500);
      const idle = await invoke(3000);

      // Assess: the first two ran, each taking the lease over from the last.
      expect(busy.run.skipped).toBeUndefined();
      expect(busy.run.batches).toBeGreaterThanOrEqual(5);
      expect(draining.run.skipped).toBeUndefined();
      expect(draining.run.batches).toBeGreaterThanOrEqual(5);
      expect(busy.requests.lambda.Invoke ?? 0).toBe(0);
      expect(logs.some((l) => l.includes('tasks run inside the coordinator'))).toBe(true);

      // Assess: the idle minute ran its batches on schedule and only took and released the lease.
      expect(idle.run.skipped).toBeUndefined();
      expect(idle.run.batches).toBeGreaterThanOrEqual(10);
      expect(idle.run.lastCompleted).toBeGreaterThan(draining.run.lastCompleted);
      expect(idle.requests.lambda).toEqual({});
      expect(idle.dynamoWrites.map(leaseWrite)).toEqual([
        { key: 'lease', owner: expect.stringMatching(/^lambda:/), quietThrough: draining.run.lastCompleted },
        { key: 'lease', owner: '', quietThrough: idle.run.lastCompleted },
      ]);
      // S3: only what the coordinator lists once when it starts, to sweep what earlier ones left
      // (Retention.sweep, docs/design.md "lists once at start"); no quiet batch asks anything.
      expect(idle.s3.map((r) => `${r.method} ${decodeURIComponent(r.url)}`).sort()).toEqual([
        `GET /${config.stateBucket}/?list-type=2&prefix=${name}/batch/`,
        `GET /${config.stateBucket}/?list-type=2&prefix=${name}/state/`,
      ]);

      // Act: 30 lines more, and an invocation that reads them and lets the window drain again.
      const second = Array.from({ length: 30 }, (_, i) => `v${i % 7} y${i % 3}`);
      await putLines(stack, name, second);
      const woken = await invoke(2500);

      // Assess: the invocation ran batches past the idle minute's.
      expect(woken.run.skipped).toBeUndefined();
      expect(woken.run.batches).toBeGreaterThanOrEqual(1);
      expect(woken.run.lastCompleted).toBeGreaterThan(idle.run.lastCompleted);

      // Assess: every word of the 70 lines counted exactly once over all batches.
      const counts = await readS3Batches(stack, `${name}-out`, 'counts');
      expect(sum([...counts.values()].flat())).toEqual(wordsOf([...first, ...second]));
      // The new lines were read by the last invocation: in batches after the idle minute's last.
      const countedAfterIdle = [...counts].filter(([t]) => t > idle.run.lastCompleted).flatMap(([, lines]) => lines);
      expect(sum(countedAfterIdle)).toEqual(wordsOf(second));

      // Assess: each window saved is the counts of the batches in (T - 1 s, T], and every window with content was saved.
      const windowed = await readS3Batches(stack, `${name}-out`, 'windowed');
      const expectedAt = (T: number) => sum([...counts].filter(([t]) => t > T - WINDOW_MS && t <= T).flatMap(([, lines]) => lines));
      const withContent = new Set<number>();
      for (const [t, lines] of counts) if (lines.length > 0) for (let T = t; T < t + WINDOW_MS; T += INTERVAL_MS) withContent.add(T);
      expect(withContent.size).toBeGreaterThan(0);
      for (const T of new Set([...windowed.keys(), ...withContent])) expect([T, sum(windowed.get(T) ?? [])]).toEqual([T, expectedAt(T)]);
      // The last window with content is the last one the last batch with input is in.
      const lastWindow = Math.max(...[...windowed].filter(([, lines]) => lines.length > 0).map(([T]) => T));
      const lastInput = Math.max(...[...counts].filter(([, lines]) => lines.length > 0).map(([t]) => t));
      expect(lastWindow).toBe(lastInput + WINDOW_MS - INTERVAL_MS);
      expect(lastWindow).toBeLessThanOrEqual(woken.run.lastCompleted);
    } finally {
      for (const p of Object.values(proxies)) await p.stop();
    }
  }, 60_000);
});
