import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { defineJob, type JobDefinition } from '../lib/api/job.ts';
import { lambdaClient } from '../lib/aws/clients.ts';
import { createWorkerHandler } from '../lib/aws/handlers.ts';
import { LambdaInvoker } from '../lib/aws/lambdaInvoker.ts';
import type { TaskDescriptor } from '../lib/engine/protocol.ts';
import { MemoryBlobStore } from '../lib/local/memoryBlobStore.ts';
import { localSinks } from '../lib/local/sinks.ts';
import { localSources } from '../lib/local/sourceFactory.ts';
import type { BlobStore, SinkResolver } from '../lib/ports/index.ts';
import { testCoordinator } from '../test/helpers/engine.ts';
import { DoomedContainer } from './helpers/killedWorker.ts';
import { type LambdaEndpoint, startLambdaEndpoint } from './helpers/lambdaEndpoint.ts';

const input = [['a b a', 'c'], ['b b', 'd a'], ['e']];

/** Each batch's word counts, counted here from `input` (not by the engine), sorted as the job sorts what it collects. */
const expected: [string, number][][] = input.map((batch) => {
  const counts = new Map<string, number>();
  for (const line of batch) for (const word of line.split(' ')) counts.set(word, (counts.get(word) ?? 0) + 1);
  return [...counts].sort();
});

/** Word counts per batch, collected into `out`; with `save`, also saved as text files under the prefix `counts`. */
function build(out: [string, number][][], save = false) {
  return (ctx: StreamingContext) => {
    const counts = ctx
      .queueStream(input, { numPartitions: 2 })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 3 });
    counts.foreachRDD(async (b) => {
      out.push(((await b.collect()) as [string, number][]).sort());
    });
    if (save) counts.saveAsTextFiles('counts');
  };
}

/** What a worker function of the job runs with: the job, the state store, the sinks. */
interface WorkerParts {
  readonly job: JobDefinition;
  readonly blobs: BlobStore;
  readonly sinks: SinkResolver;
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

  /**
   * A coordinator whose tasks go through the Lambda endpoint to `fn`, wrapping the real worker
   * handler. With `outDir`, the job also saves its counts there as text files.
   */
  function setup(
    fn: string,
    wrap: (run: (event: unknown) => Promise<unknown>, parts: WorkerParts) => (event: unknown) => Promise<unknown> = (r) => r,
    options: { readonly inlineLimit?: number; readonly outDir?: string } = {},
  ) {
    const out: [string, number][][] = [];
    const jobOptions = { name: 'engine-test', batchInterval: 1000 } as const;
    const save = options.outDir !== undefined;
    const job = defineJob(jobOptions, build(out, save));
    const blobs = new MemoryBlobStore();
    const sinks = localSinks(options.outDir ?? process.cwd());
    const worker = createWorkerHandler(async () => job, () => ({ blobs, sources: localSources(), sinks }));
    lambda.register(fn, wrap(worker, { job, blobs, sinks }));
    const t = testCoordinator(jobOptions, build(out, save), {
      blobs,
      inlineLimit: options.inlineLimit,
      outDir: options.outDir,
      wrapInvoker: () => {
        // The Lambda client makes one attempt per Invoke; the invoker's own retries back off from `backoffMs`.
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
    const viaBlobs = setup('worker-blobs', undefined, { inlineLimit: 0 });
    await viaBlobs.run(3);
    expect(viaBlobs.out).toEqual(expected);
    expect(lambda.calls.get('worker-blobs')).toBeGreaterThan(10);
  });

  it('a worker killed mid-task, after its output part landed and before it answered, is retried: the output is unchanged', async () => {
    // Prepare: the first runs of two output tasks are in containers of their own, killed once their part file landed.
    const outDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-killed-'));
    closers.push(() => fs.rm(outDir, { recursive: true, force: true }));
    // Tasks are told apart by what they compute (an attempt number counts the collect and the output of a dataset together).
    const killed = new Set<string>();
    const deaths: { landed: string[]; stored: boolean[] }[] = [];
    const t = setup(
      'worker-killed',
      (run, { job, blobs, sinks }) =>
        async (event) => {
          const task = event as TaskDescriptor;
          const writesPart = task.stage.kind === 'result' && task.stage.action.kind === 'output';
          const id = `${task.time}/${task.partition}/${JSON.stringify(task.stage)}`;
          if (!writesPart || killed.has(id) || killed.size === 2) return run(event);
          killed.add(id);
          const container = new DoomedContainer(1);
          const killable = createWorkerHandler(async () => job, () => ({
            blobs: container.blobs(blobs),
            sources: localSources(),
            sinks: (location) => {
              const sink = sinks(location);
              return { ...sink, store: container.blobs(sink.store) };
            },
          }));
          try {
            return await container.invoke(killable, event);
          } finally {
            // Looked at before the coordinator hears of the death: the killed run's part file is on disk.
            const stored = await Promise.all(container.landed.map((key) => fs.stat(path.join(outDir, key)).then(() => true, () => false)));
            deaths.push({ landed: [...container.landed], stored });
          }
        },
      { outDir },
    );

    // Act
    await t.run(3);

    // Assess
    expect(deaths).toHaveLength(2);
    for (const death of deaths) {
      expect(death.landed).toEqual([expect.stringMatching(/^counts-\d+\/part-/)]);
      expect(death.stored).toEqual([true]);
    }
    expect(t.log.warnings.filter((w) => /Runtime\.ExitError: .*Runtime exited with error: signal: killed/.test(w))).toHaveLength(2);
    expect(t.out).toEqual(expected);
    // Each batch's saved parts hold its counts once: the retry wrote over the killed run's part, not beside it.
    const batches = (await fs.readdir(outDir)).sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)));
    const saved = await Promise.all(
      batches.map(async (dir) => {
        const parts = (await fs.readdir(path.join(outDir, dir))).filter((f) => f !== '_SUCCESS');
        const text = await Promise.all(parts.map((f) => fs.readFile(path.join(outDir, dir, f), 'utf8')));
        return text.join('').split('\n').filter((l) => l !== '').sort();
      }),
    );
    expect(saved).toEqual(expected.map((batch) => batch.map(([w, n]) => `(${w},${n})`).sort()));
  });

  it('a task that runs twice (a duplicate invocation) changes nothing', async () => {
    const t = setup(
      'worker-twice',
      (run) => async (event) => {
        await run(event);
        return run(event);
      },
      { inlineLimit: 0 },
    );
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
