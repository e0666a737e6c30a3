import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { defineJob } from '../lib/api/job.ts';
import { lambdaClient } from '../lib/aws/clients.ts';
import { createWorkerHandler } from '../lib/aws/handlers.ts';
import { LambdaInvoker } from '../lib/aws/lambdaInvoker.ts';
import { MemoryBlobStore } from '../lib/local/memoryBlobStore.ts';
import { localSinks } from '../lib/local/sinks.ts';
import { localSources } from '../lib/local/sourceFactory.ts';
import { testCoordinator } from '../test/helpers/engine.ts';
import { type LambdaEndpoint, startLambdaEndpoint } from './helpers/lambdaEndpoint.ts';

const input = [['a b a', 'c'], ['b b', 'd a'], ['e']];
const expected = [
  [
    ['a', 2],
    ['b', 1],
    ['c', 1],
  ],
  [
    ['a', 1],
    ['b', 2],
    ['d', 1],
  ],
  [['e', 1]],
];

function build(out: [string, number][][]) {
  return (ctx: StreamingContext) => {
    ctx
      .queueStream(input, { numPartitions: 2 })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 3 })
      .foreachRDD(async (b) => {
        out.push(((await b.collect()) as [string, number][]).sort());
      });
  };
}

describe('LambdaInvoker: tasks run in a worker Lambda function behind the Invoke API', () => {
  let lambda: LambdaEndpoint;
  beforeAll(async () => {
    lambda = await startLambdaEndpoint();
  });
  afterAll(async () => {
    await lambda.stop();
  });
  let closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers) await c();
    closers = [];
  });

  /** A coordinator whose tasks go through the Lambda endpoint to `fn`, wrapping the real worker handler. */
  function setup(fn: string, wrap: (run: (event: unknown) => Promise<unknown>) => (event: unknown) => Promise<unknown> = (r) => r, inlineLimit?: number) {
    const out: [string, number][][] = [];
    const options = { name: 'engine-test', batchInterval: 1000 } as const;
    const job = defineJob(options, build(out));
    const blobs = new MemoryBlobStore();
    const worker = createWorkerHandler(async () => job, () => ({ blobs, sources: localSources(), sinks: localSinks(process.cwd()) }));
    lambda.register(fn, wrap(worker));
    const t = testCoordinator(options, build(out), {
      blobs,
      inlineLimit,
      wrapInvoker: () => {
        const inv = new LambdaInvoker({ client: lambdaClient({ endpoint: lambda.endpoint }), functionName: fn, concurrency: 4, backoffMs: 1 });
        closers.push(() => inv.close());
        return inv;
      },
    });
    return { ...t, out };
  }

  it('runs every task through Invoke and gives the same output as in-process, inline and blob shuffles alike', async () => {
    const inline = setup('worker-inline');
    await inline.run(3);
    expect(inline.out).toEqual(expected);
    const viaBlobs = setup('worker-blobs', undefined, 0);
    await viaBlobs.run(3);
    expect(viaBlobs.out).toEqual(expected);
    expect(lambda.calls.get('worker-blobs')).toBeGreaterThan(10);
  });

  it('a worker that crashes mid-task is retried: the output is unchanged', async () => {
    let crashed = 0;
    const t = setup('worker-crash', (run) => async (event) => {
      if (crashed < 2) {
        crashed++;
        throw new Error('Runtime exited with error: signal: killed');
      }
      return run(event);
    });
    await t.run(3);
    expect(t.out).toEqual(expected);
    expect(t.log.warnings.filter((w) => w.includes('signal: killed'))).toHaveLength(2);
  });

  it('a task that runs twice (a duplicate invocation) changes nothing', async () => {
    const t = setup('worker-twice', (run) => async (event) => {
      await run(event);
      return run(event);
    }, 0);
    await t.run(3);
    expect(t.out).toEqual(expected);
  });

  it('throttled invocations are retried with backoff: the output is unchanged', async () => {
    const t = setup('worker-throttled');
    const before = lambda.throttled();
    lambda.throttleNext(5);
    await t.run(3);
    expect(t.out).toEqual(expected);
    expect(lambda.throttled() - before).toBe(5);
  });

  it('a payload of the wrong shape is a non-retryable failure, not a crash', async () => {
    const blobs = new MemoryBlobStore();
    const job = defineJob({ name: 'engine-test', batchInterval: 1000 }, build([]));
    const worker = createWorkerHandler(async () => job, () => ({ blobs, sources: localSources(), sinks: localSinks(process.cwd()) }));
    lambda.register('worker-shape', worker);
    const inv = new LambdaInvoker({ client: lambdaClient({ endpoint: lambda.endpoint }), functionName: 'worker-shape' });
    closers.push(() => inv.close());
    const res = (await inv.invoke({ hello: 'world' })) as { ok: boolean; retryable: boolean; error: { message: string } };
    expect(res.ok).toBe(false);
    expect(res.retryable).toBe(false);
    expect(res.error.message).toMatch(/not a Sluice task payload/);
  });

  it('a missing worker function is named in the error', async () => {
    const inv = new LambdaInvoker({ client: lambdaClient({ endpoint: lambda.endpoint }), functionName: 'no-such-worker' });
    closers.push(() => inv.close());
    await expect(inv.invoke({})).rejects.toThrow(/worker function no-such-worker does not exist/);
  });
});
