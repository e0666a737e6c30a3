import { describe, expect, it } from 'vitest';
import { type Batch, defineJob, type DStream, JobDefinitionError, RecordError, SluiceError, type StreamingContext } from 'sluice';
import { runBatches } from 'sluice/testing';
import { caught } from '../helpers/semantics.ts';

const interval = 1000;

/** Runs a job that fails; returns the error. `maxTaskAttempts: 1` so a failing task is not retried. */
function fails<T>(build: (ctx: StreamingContext) => DStream<T> | undefined, batches = 2): Promise<Error> {
  return caught(() => runBatches({ batchInterval: interval, batches, maxTaskAttempts: 1 }, build));
}

describe('bad durations', () => {
  for (const bad of ['fast', '0s', -1, 0, 1.5, '', '5 parsecs'] as const) {
    it(`batchInterval ${JSON.stringify(bad)} is refused with a JobDefinitionError`, async () => {
      const e = await caught(() => runBatches({ batchInterval: bad, batches: 1 }, (ctx) => ctx.queueStream([[1]])));
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.name).toBe('JobDefinitionError');
      expect(e.message).toContain('batchInterval');
      const direct = await caught(() => defineJob({ name: 'j', batchInterval: bad }, () => {}));
      expect(direct).toBeInstanceOf(JobDefinitionError);
      expect(direct.message).toContain('batchInterval');
    });
  }

  it('an unreadable duration string says how to write one', async () => {
    const e = await caught(() => defineJob({ name: 'j', batchInterval: 'fast' }, () => {}));
    expect(e.message).toContain('"fast"');
    expect(e.message).toContain("'2s'");
  });

  it('a missing batchInterval is refused', async () => {
    const e = await caught(() => defineJob({ name: 'j' } as never, () => {}));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('batchInterval is required');
  });
});

describe('bad numPartitions', () => {
  const ops: [string, (ctx: StreamingContext, n: number) => DStream<unknown>][] = [
    ['queueStream', (ctx, n) => ctx.queueStream([[1]], { numPartitions: n })],
    ['repartition', (ctx, n) => ctx.queueStream([[1]]).repartition(n)],
    ['reduceByKey', (ctx, n) => ctx.queueStream<[string, number]>([[['a', 1]]]).reduceByKey((a, b) => a + b, { numPartitions: n })],
    ['groupByKey', (ctx, n) => ctx.queueStream<[string, number]>([[['a', 1]]]).groupByKey({ numPartitions: n })],
    ['countByValue', (ctx, n) => ctx.queueStream([[1]]).countByValue({ numPartitions: n })],
    [
      'join',
      (ctx, n) => {
        const s = ctx.queueStream<[string, number]>([[['a', 1]]]);
        return s.join(s, { numPartitions: n });
      },
    ],
    [
      'cogroup',
      (ctx, n) => {
        const s = ctx.queueStream<[string, number]>([[['a', 1]]]);
        return s.cogroup(s, { numPartitions: n });
      },
    ],
  ];
  for (const [op, build] of ops) {
    for (const n of [0, -1, 1.5]) {
      it(`${op} with numPartitions ${n} is refused when the job is built`, async () => {
        const e = await caught(() => runBatches({ batchInterval: interval, batches: 1 }, (ctx) => build(ctx, n)));
        expect(e).toBeInstanceOf(JobDefinitionError);
        expect(e.name).toBe('JobDefinitionError');
        expect(e.message).toContain(op);
        expect(e.message).toContain('numPartitions must be a whole number >= 1');
        expect(e.message).toContain(String(n));
      });
    }
  }

  it('runBatches refuses a bad defaultParallelism', async () => {
    const e = await caught(() => runBatches({ batchInterval: interval, batches: 1, defaultParallelism: 0 }, (ctx) => ctx.queueStream([[1]])));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('defaultParallelism');
  });
});

describe('pair operators on records that are not pairs', () => {
  const words = (ctx: StreamingContext) => ctx.queueStream([['hello', 'world']]) as unknown as DStream<[string, number]>;

  it('reduceByKey on strings fails the batch with a RecordError naming the operator', async () => {
    const e = await fails((ctx) => words(ctx).reduceByKey((a, b) => a + b));
    expect(e).toBeInstanceOf(RecordError);
    expect(e.name).toBe('RecordError');
    expect(e.message).toContain('reduceByKey');
    expect(e.message).toContain('expects [key, value] pairs');
    expect(e.message).toContain('"hello"');
  });

  it('mapValues on strings fails with a RecordError naming the operator', async () => {
    const e = await fails((ctx) => words(ctx).mapValues((v) => v));
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('mapValues');
    expect(e.message).toContain('expects [key, value] pairs');
  });

  it('join with a side that is not pairs fails with a RecordError naming the operator', async () => {
    const e = await fails((ctx) => ctx.queueStream<[string, number]>([[['hello', 1]]]).join(words(ctx)));
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('join');
    expect(e.message).toContain('expects [key, value] pairs');
  });

  it('a 3-element array is not a pair', async () => {
    const e = await fails((ctx) => (ctx.queueStream([[[1, 2, 3]]]) as unknown as DStream<[number, number]>).groupByKey());
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('groupByKey');
    expect(e.message).toContain('an array of length 3');
  });

  it('the error carries the batch time', async () => {
    const e = await fails((ctx) =>
      (ctx.queueStream<unknown>([[['ok', 1]], ['not a pair']]) as DStream<[string, number]>).reduceByKey((a, b) => a + b),
    );
    expect(e).toBeInstanceOf(RecordError);
    expect((e as RecordError).batchTime).toBe(2000);
  });
});

describe('user functions that throw', () => {
  it('a throwing map function fails the batch with a RecordError holding its message and the batch time', async () => {
    const e = await fails((ctx) =>
      ctx.queueStream([[1, 2], [3, 4]]).map((x) => {
        if (x === 3) throw new Error('boom on three');
        return x;
      }),
    );
    expect(e).toBeInstanceOf(RecordError);
    expect(e.name).toBe('RecordError');
    expect(e.message).toContain('boom on three');
    expect(e.message).toContain('2000');
    expect((e as RecordError).batchTime).toBe(2000);
  });

  it('the batches before the failing one are complete', async () => {
    const seen: number[] = [];
    await caught(() =>
      runBatches({ batchInterval: interval, batches: 3, maxTaskAttempts: 1 }, (ctx) => {
        const s = ctx.queueStream([[1], [2], [3]]).map((x) => {
          if (x === 2) throw new Error('bad record');
          return x;
        });
        s.foreachRDD(async (b, t) => {
          await b.collect();
          seen.push(t);
        });
        return s;
      }),
    );
    expect(seen).toEqual([1000]);
  });

  it('a flatMap function that returns no iterable fails with a RecordError', async () => {
    const e = await fails((ctx) => ctx.queueStream([[1]]).flatMap((x) => x as unknown as number[]));
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('must return an array or iterable');
  });

  it('a throwing reduceByKey function fails with a RecordError holding its message', async () => {
    const e = await fails((ctx) =>
      ctx.queueStream<[string, number]>([
        [
          ['a', 1],
          ['a', 2],
        ],
      ]).reduceByKey(() => {
        throw new Error('cannot add');
      }),
    );
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('cannot add');
  });

  it('retries a failing task up to maxTaskAttempts times, like spark.task.maxFailures', async () => {
    let calls = 0;
    const e = await caught(() =>
      runBatches({ batchInterval: interval, batches: 1, maxTaskAttempts: 3 }, (ctx) =>
        ctx.queueStream([[1]]).map(() => {
          calls++;
          throw new Error('always');
        }),
      ),
    );
    expect(e.message).toContain('always');
    expect(calls).toBe(3);
  });
});

describe('transform functions that do not return a batch', () => {
  const bad: [string, (b: Batch<number>) => unknown][] = [
    ['a number', () => 42],
    ['a Promise', async (b) => b],
    ['undefined', () => undefined],
    ['null', () => null],
    ['a string', () => 'batch'],
  ];
  for (const [what, fn] of bad) {
    it(`transform returning ${what} fails with a SluiceError saying it must return a batch`, async () => {
      const e = await fails((ctx) => ctx.queueStream([[1]]).transform(fn as (b: Batch<number>) => Batch<number>));
      expect(e).toBeInstanceOf(SluiceError);
      expect(e.message).toContain('must return a batch');
      expect(e.message).toContain('transform');
    });
  }

  it('transformWith returning a number fails the same way', async () => {
    const e = await fails((ctx) => {
      const s = ctx.queueStream([[1]]);
      return s.transformWith(s, () => 7 as unknown as number[]);
    });
    expect(e).toBeInstanceOf(SluiceError);
    expect(e.message).toContain('must return a batch');
  });

  it('ctx.transform returning a number fails the same way', async () => {
    const e = await fails((ctx) => ctx.transform([ctx.queueStream([[1]])], () => 7 as unknown as number[]));
    expect(e).toBeInstanceOf(SluiceError);
    expect(e.message).toContain('must return a batch');
  });

  it('a transform function that throws fails with a SluiceError holding its message and naming the node', async () => {
    const e = await fails((ctx) =>
      ctx.queueStream([[1]]).transform(() => {
        throw new Error('no plan today');
      }),
    );
    expect(e).toBeInstanceOf(SluiceError);
    expect(e.message).toContain('no plan today');
    expect(e.message).toContain('transform-1');
  });
});

describe('bad jobs', () => {
  for (const [what, options] of [
    ['a missing name', { batchInterval: 1000 }],
    ['an empty name', { name: '', batchInterval: 1000 }],
    ['a name with a space', { name: 'word count', batchInterval: 1000 }],
    ['a name starting with a digit', { name: '1job', batchInterval: 1000 }],
    ['a name with a slash', { name: 'a/b', batchInterval: 1000 }],
    ['a name of 64 characters', { name: `j${'x'.repeat(63)}`, batchInterval: 1000 }],
  ] as const) {
    it(`defineJob with ${what} is refused`, async () => {
      const e = await caught(() => defineJob(options as never, () => {}));
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.name).toBe('JobDefinitionError');
      expect(e.message).toContain('name must start with a letter');
    });
  }

  it('defineJob without a build function is refused', async () => {
    const e = await caught(() => defineJob({ name: 'j', batchInterval: 1000 }, undefined as never));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('build function');
  });

  it('a job with no output operation is refused', async () => {
    const e = await caught(() =>
      runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
        ctx.queueStream([[1]]).map((x) => x);
      }),
    );
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('no output operation');
  });

  it('an async build function is refused', async () => {
    const e = await caught(() => runBatches({ batchInterval: interval, batches: 1 }, (async () => undefined) as never));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('must not be async');
  });

  for (const n of [0, -1, 1.5]) {
    it(`print(${n}) is refused`, async () => {
      const e = await caught(() =>
        runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
          const s = ctx.queueStream([[1]]);
          s.print(n);
          return s;
        }),
      );
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.message).toContain('print');
      expect(e.message).toContain('num must be a whole number >= 1');
    });
  }

  it('an operator given something that is not a function is refused when the job is built', async () => {
    const e = await caught(() => runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([[1]]).map(42 as never)));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('map: expected a function');
  });

  it('saveAsTextFiles with an empty prefix is refused', async () => {
    const e = await caught(() =>
      runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
        const s = ctx.queueStream([[1]]);
        s.saveAsTextFiles('');
        return s;
      }),
    );
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('saveAsTextFiles');
    expect(e.message).toContain('prefix');
  });

  it('queueStream of something that is not an array of arrays is refused', async () => {
    const e = await caught(() => runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([1, 2] as never)));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('queueStream: expected an array of arrays');
  });

  it('union of no streams is refused', async () => {
    const e = await caught(() => runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.union([])));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('union');
  });

  it('batch actions are refused outside foreachRDD', async () => {
    let result: Promise<unknown> | undefined;
    await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream([[1]]).transform((b) => {
        result ??= b.count().then(
          () => 'resolved',
          (e: unknown) => e,
        );
        return b;
      }),
    );
    const e = await result;
    expect(e).toBeInstanceOf(SluiceError);
    expect((e as Error).message).toContain('only available on the coordinator, inside foreachRDD');
  });
});
