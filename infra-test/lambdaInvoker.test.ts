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

  describe("payloads over Lambda's 6 MB", () => {
    // One batch of 7,000 distinct 1 KB lines in 2 partitions, counted into 1 partition and collected:
    // with map outputs inline, the reduce task carries ~7 MB, and so does the collected result.
    const lines = [Array.from({ length: 7000 }, (_, i) => `${i}:`.padEnd(1000, 'x'))];
    const bigJob = (out: number[]) => (ctx: StreamingContext) => {
      ctx
        .queueStream(lines, { numPartitions: 2 })
        .map((l) => [l, 1] as [string, number])
        .reduceByKey((a, b) => a + b, { numPartitions: 1 })
        .foreachRDD(async (b) => {
          const pairs = (await b.collect()) as [string, number][];
          out.push(pairs.length, pairs.reduce((n, [l, c]) => n + l.length * c, 0));
        });
    };

    function setupBig(fn: string, limits: { invoker?: number; worker?: number }) {
      const out: number[] = [];
      const written: string[] = [];
      const blobs = new (class extends MemoryBlobStore {
        override put(key: string, body: Uint8Array | string) {
          written.push(key);
          return super.put(key, body);
        }
      })();
      const options = { name: 'engine-test', batchInterval: 1000, maxTaskAttempts: 2 } as const;
      const job = defineJob(options, bigJob(out));
      lambda.register(fn, createWorkerHandler(async () => job, () => ({ blobs, sources: localSources(), sinks: localSinks(process.cwd()) }), { payloadLimit: limits.worker }));
      const t = testCoordinator(options, bigJob(out), {
        blobs,
        inlineLimit: 64 * 1024 * 1024,
        wrapInvoker: () => {
          const inv = new LambdaInvoker({ client: lambdaClient({ endpoint: lambda.endpoint }), functionName: fn, blobs, payloadLimit: limits.invoker, backoffMs: 1 });
          closers.push(() => inv.close());
          return inv;
        },
      });
      return { ...t, out, written, blobs };
    }

    it('a task and a result too big for Invoke travel through the state store, and are deleted once read', async () => {
      const t = setupBig('worker-big', {});
      await t.run(1);
      expect(t.out).toEqual([7000, 7000 * 1000]);
      expect(t.written.filter((k) => k.includes('/payloads/')).map((k) => k.slice(k.lastIndexOf('.')))).toEqual(['.request', '.response']);
      expect((await t.blobs.list('batch/')).filter((k) => k.includes('/payloads/'))).toEqual([]);
    });

    it('without the state store detour, Lambda refuses the request (413) and the response (ResponseSizeTooLarge): the batch fails', async () => {
      const request = setupBig('worker-big-request', { invoker: Number.POSITIVE_INFINITY });
      await expect(request.run(1)).rejects.toThrow(/RequestTooLargeException|Request must be smaller than 6291456 bytes/);
      const response = setupBig('worker-big-response', { worker: Number.POSITIVE_INFINITY });
      await expect(response.run(1)).rejects.toThrow(/Function\.ResponseSizeTooLarge/);
    });

    it('an invoker without a blob store names the limit instead of sending an oversized task', async () => {
      const inv = new LambdaInvoker({ client: lambdaClient({ endpoint: lambda.endpoint }), functionName: 'worker-big', payloadLimit: 100 });
      closers.push(() => inv.close());
      await expect(inv.invoke({ protocol: 1, padding: 'x'.repeat(200) })).rejects.toThrow(/over Lambda's 6 MB Invoke limit, and the invoker has no blob store/);
    });

    it('a task sent through the state store that is not there fails that attempt, which the coordinator retries (sending it again)', async () => {
      const blobs = new MemoryBlobStore();
      const job = defineJob({ name: 'engine-test', batchInterval: 1000 }, build([]));
      const worker = createWorkerHandler(async () => job, () => ({ blobs, sources: localSources(), sinks: localSinks(process.cwd()) }));
      const res = (await worker({ sluiceIndirect: 'batch/000000000001000/payloads/gone.request' })) as { ok: boolean; retryable: boolean; error: { message: string } };
      expect(res.ok).toBe(false);
      expect(res.retryable).toBe(true);
      expect(res.error.message).toMatch(/payloads\/gone.request is missing from the state store/);
    });
  });

  it('a missing worker function is named in the error', async () => {
    const inv = new LambdaInvoker({ client: lambdaClient({ endpoint: lambda.endpoint }), functionName: 'no-such-worker' });
    closers.push(() => inv.close());
    await expect(inv.invoke({})).rejects.toThrow(/worker function no-such-worker does not exist/);
  });
});
