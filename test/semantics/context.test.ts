import { describe, expect, it } from 'vitest';
import { defineJob, type DStream, JobDefinitionError } from 'sluice';
import { runBatches } from 'sluice/testing';
import { caught, dataByTime } from '../helpers/semantics.ts';

// Spark's QueueInputDStream: with oneAtATime one queued RDD per batch; otherwise every RDD queued
// so far, unioned, in the next batch; the default RDD (or an empty one) when the queue is empty.

describe('queueStream', () => {
  it('batch i is the batch at time (i + 1) × batchInterval, and an exhausted queue gives empty batches', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 5 }, (ctx) => ctx.queueStream([[1, 2], [3], [], [4]]));
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [1, 2] },
      { time: 2000, data: [3] },
      { time: 3000, data: [] },
      { time: 4000, data: [4] },
      { time: 5000, data: [] },
    ]);
  });

  it('takes the batch interval as a duration string', async () => {
    const ms = await runBatches({ batchInterval: '500ms', batches: 2 }, (ctx) => ctx.queueStream([['a'], ['b']]));
    expect(ms.map((b) => b.time)).toEqual([500, 1000]);
    const s = await runBatches({ batchInterval: '2s', batches: 3 }, (ctx) => ctx.queueStream([['a'], ['b']]));
    expect(dataByTime(s)).toEqual([
      { time: 2000, data: ['a'] },
      { time: 4000, data: ['b'] },
      { time: 6000, data: [] },
    ]);
  });

  it('slices each queued array into numPartitions contiguous, nearly equal partitions (like sc.parallelize)', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 3 }, (ctx) =>
      ctx.queueStream([['a', 'b', 'c', 'd', 'e', 'f', 'g'], ['x'], []], { numPartitions: 3 }),
    );
    expect(out.map((b) => b.partitions)).toEqual([
      [
        ['a', 'b'],
        ['c', 'd'],
        ['e', 'f', 'g'],
      ],
      [[], [], ['x']],
      [[], [], []],
    ]);
  });

  it('defaults to one partition per batch', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 2 }, (ctx) => ctx.queueStream([[1, 2, 3], []]));
    expect(out.map((b) => b.partitions)).toEqual([[[1, 2, 3]], [[]]]);
  });

  it('oneAtATime: false puts everything queued so far into the next batch', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 3 }, (ctx) => ctx.queueStream([[1, 2], [3], [4]], { oneAtATime: false }));
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [1, 2, 3, 4] },
      { time: 2000, data: [] },
      { time: 3000, data: [] },
    ]);
  });

  it('uses default when the queue is empty', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 4 }, (ctx) => ctx.queueStream([[1], [2]], { default: [0] }));
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [1] },
      { time: 2000, data: [2] },
      { time: 3000, data: [0] },
      { time: 4000, data: [0] },
    ]);
  });

  it('uses default after oneAtATime: false has drained the queue', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 3 }, (ctx) => ctx.queueStream([[1], [2]], { oneAtATime: false, default: [9, 9] }));
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [1, 2] },
      { time: 2000, data: [9, 9] },
      { time: 3000, data: [9, 9] },
    ]);
  });

  it('picks up arrays pushed onto the queue while the job runs', async () => {
    const queue: string[][] = [['first']];
    const out = await runBatches({ batchInterval: 1000, batches: 3 }, (ctx) => {
      const s = ctx.queueStream(queue);
      s.foreachRDD((_b, time) => {
        queue.push([`pushed at ${time}`]);
      });
      return s;
    });
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: ['first'] },
      { time: 2000, data: ['pushed at 1000'] },
      { time: 3000, data: ['pushed at 2000'] },
    ]);
  });

  it('runBatches with 0 batches runs nothing', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 0 }, (ctx) => ctx.queueStream([[1]]));
    expect(out).toEqual([]);
  });
});

describe('defineJob', () => {
  it('resolves options: duration strings become milliseconds', () => {
    const job = defineJob({ name: 'my-job_1', batchInterval: '1.5s' }, () => {});
    expect(job.options.name).toBe('my-job_1');
    expect(job.options.batchInterval).toBe(1500);
    expect(job.options.maxTaskAttempts).toBe(4);
  });

  it('gives the context the batch interval and job name', async () => {
    let seen: [number, string] | undefined;
    await runBatches({ batchInterval: '250ms', batches: 1, name: 'ctx-job' }, (ctx) => {
      seen = [ctx.batchInterval, ctx.jobName];
      return ctx.queueStream([[1]]);
    });
    expect(seen).toEqual([250, 'ctx-job']);
  });
});

describe('stream ids and named()', () => {
  it('gives every node a stable id: its kind and its position among nodes of that kind', async () => {
    const ids: string[] = [];
    await runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => {
      const q = ctx.queueStream([[1]]);
      const a = q.map((x) => x + 1);
      const b = a.map((x) => x * 2);
      const c = b.filter((x) => x > 0);
      const d = ctx.queueStream([[2]]);
      ids.push(q.id, a.id, b.id, c.id, d.id);
      return c.union(d);
    });
    expect(ids).toEqual(['queue-1', 'map-1', 'map-2', 'filter-1', 'queue-2']);
  });

  it('named() sets the id, returns the same stream, and the job runs as before', async () => {
    let named: DStream<number> | undefined;
    let mapped: DStream<number> | undefined;
    const out = await runBatches({ batchInterval: 1000, batches: 2 }, (ctx) => {
      const q = ctx.queueStream([[1, 2], [3]]).named('numbers');
      mapped = q.map((x) => x * 10);
      named = mapped.named('times-ten');
      return named;
    });
    expect(named).toBe(mapped);
    expect(named?.id).toBe('times-ten');
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [10, 20] },
      { time: 2000, data: [30] },
    ]);
  });

  it('named() refuses a name that is not 1-80 letters, digits, _ . -', async () => {
    for (const bad of ['', 'has space', 'a/b', 'x'.repeat(81)]) {
      const e = await caught(() => runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => ctx.queueStream([[1]]).named(bad)));
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.name).toBe('JobDefinitionError');
      expect(e.message).toContain('named()');
    }
  });

  it('named() refuses a name another stream already has', async () => {
    const e = await caught(() =>
      runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => {
        const a = ctx.queueStream([[1]]).named('same');
        return a.map((x) => x).named('same');
      }),
    );
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('Duplicate stream name "same"');
  });
});
