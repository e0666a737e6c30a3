import { describe, expect, it } from 'vitest';
import type { Batch, DStream } from 'sluice';
import { runBatches } from 'sluice/testing';
import { dataByTime, sorted, sortedByTime } from '../helpers/semantics.ts';

const interval = 1000;

describe('map, flatMap, filter', () => {
  it('map: one output per input record, partitions kept', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) =>
      ctx.queueStream([[1, 2, 3], [4], []], { numPartitions: 2 }).map((x) => x * 10),
    );
    expect(out.map((b) => [b.time, b.partitions])).toEqual([
      [1000, [[10], [20, 30]]],
      [2000, [[], [40]]],
      [3000, [[], []]],
    ]);
  });

  it('map can make pairs and objects', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream([['a', 'bb']]).map((w) => ({ word: w, pair: [w, w.length] as [string, number] })),
    );
    expect(out[0].data).toEqual([
      { word: 'a', pair: ['a', 1] },
      { word: 'bb', pair: ['bb', 2] },
    ]);
  });

  it('flatMap with arrays: zero or more records per input record', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx.queueStream([['a b', '', 'c'], ['d e f']]).flatMap((l) => (l === '' ? [] : l.split(' '))),
    );
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: ['a', 'b', 'c'] },
      { time: 2000, data: ['d', 'e', 'f'] },
    ]);
  });

  it('flatMap with generators and other iterables', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
      const q = ctx.queueStream([[0, 1, 3]]);
      const gen = q.flatMap(function* (n) {
        for (let i = 0; i < n; i++) yield `${n}.${i}`;
      });
      const sets = q.flatMap((n) => new Set([n, n]));
      const chars = ctx.queueStream([['hé']]).flatMap((s) => `${s}!`);
      return gen.union(sets.map(String), chars);
    });
    expect(out[0].data).toEqual(['1.0', '3.0', '3.1', '3.2', '0', '1', '3', 'h', 'é', '!']);
  });

  it('filter keeps the records for which the predicate is true', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx.queueStream([[1, 2, 3, 4, 5, 6], [7]], { numPartitions: 2 }).filter((x) => x % 2 === 0),
    );
    expect(out.map((b) => b.partitions)).toEqual([[[2], [4, 6]], [[], []]]);
  });

  it('chains of narrow operators compose', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx
        .queueStream([['to be or', 'not to be']])
        .flatMap((l) => l.split(' '))
        .filter((w) => w !== 'or')
        .map((w) => w.toUpperCase()),
    );
    expect(out[0].data).toEqual(['TO', 'BE', 'NOT', 'TO', 'BE']);
  });
});

describe('mapPartitions and glom', () => {
  it('mapPartitions gets each partition with its index', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream([['a', 'b', 'c', 'd', 'e', 'f', 'g']], { numPartitions: 3 }).mapPartitions((records, p) => records.map((r) => `${p}:${r}`)),
    );
    expect(out[0].partitions).toEqual([['0:a', '0:b'], ['1:c', '1:d'], ['2:e', '2:f', '2:g']]);
  });

  it('mapPartitions is called once per partition, empty ones included', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx.queueStream([[1, 2, 3], []], { numPartitions: 2 }).mapPartitions((records, p) => [[p, records.length]]),
    );
    expect(out.map((b) => b.partitions)).toEqual([
      [[[0, 1]], [[1, 2]]],
      [[[0, 0]], [[1, 0]]],
    ]);
  });

  it('mapPartitions may return a generator', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream([[1, 2, 3, 4]], { numPartitions: 2 }).mapPartitions(function* (records) {
        let sum = 0;
        for (const r of records) sum += r;
        yield sum;
      }),
    );
    expect(out[0].partitions).toEqual([[3], [7]]);
  });

  it('glom gives each partition as one array (an empty one for an empty partition)', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx.queueStream([[1, 2, 3, 4, 5, 6, 7], []], { numPartitions: 3 }).glom(),
    );
    expect(out.map((b) => b.partitions)).toEqual([
      [[[1, 2]], [[3, 4]], [[5, 6, 7]]],
      [[[]], [[]], [[]]],
    ]);
  });
});

describe('repartition', () => {
  const spread = (partitions: unknown[][]) => {
    const sizes = partitions.map((p) => p.length);
    return Math.max(...sizes) - Math.min(...sizes);
  };

  it('spreads one partition evenly over n partitions, keeping every record', async () => {
    const records = Array.from({ length: 100 }, (_, i) => i);
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([records]).repartition(4));
    expect(out[0].partitions).toHaveLength(4);
    expect(out[0].partitions.map((p) => p.length)).toEqual([25, 25, 25, 25]);
    expect(sorted(out[0].data)).toEqual(sorted(records));
  });

  it('keeps the multiset of records (duplicates too) from several input partitions, spread roughly evenly', async () => {
    const records = Array.from({ length: 30 }, (_, i) => `r${i % 7}`);
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([records], { numPartitions: 3 }).repartition(4));
    const parts = out[0].partitions;
    expect(parts).toHaveLength(4);
    expect(sorted(out[0].data)).toEqual(sorted(records));
    // Each of the 3 input partitions deals its records round-robin: sizes differ by at most 3.
    expect(spread(parts)).toBeLessThanOrEqual(3);
    for (const p of parts) expect(p.length).toBeGreaterThan(0);
  });

  it('can reduce the number of partitions', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([[1, 2, 3, 4, 5]], { numPartitions: 3 }).repartition(1));
    expect(out[0].partitions).toHaveLength(1);
    expect(sorted(out[0].data)).toEqual([1, 2, 3, 4, 5]);
  });

  it('an empty batch gives n empty partitions', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream<number>([[]], { numPartitions: 2 }).repartition(5));
    expect(out[0].partitions).toEqual([[], [], [], [], []]);
  });
});

describe('union', () => {
  it('DStream.union: the records of both streams, their partitions side by side', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) => {
      const a = ctx.queueStream([[1, 2, 3], [4], []], { numPartitions: 2 });
      const b = ctx.queueStream([[10], [], [30, 40]]);
      return a.union(b);
    });
    expect(out.map((b) => [b.time, b.partitions])).toEqual([
      [1000, [[1], [2, 3], [10]]],
      [2000, [[], [4], []]],
      [3000, [[], [], [30, 40]]],
    ]);
  });

  it('DStream.union takes several streams', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
      const [a, b, c] = [['a'], ['b'], ['c']].map((x) => ctx.queueStream([x]));
      return a.union(b, c);
    });
    expect(out[0].partitions).toEqual([['a'], ['b'], ['c']]);
  });

  it('ctx.union of a list of streams', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx.union([ctx.queueStream([[1], [2]]), ctx.queueStream([[3], []], { numPartitions: 2 }), ctx.queueStream([[], [4]])]),
    );
    expect(out.map((b) => b.partitions)).toEqual([
      [[1], [], [3], []],
      [[2], [], [], [4]],
    ]);
  });

  it('a stream united with itself gives each record twice', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
      const a = ctx.queueStream([['x', 'y']]);
      return a.union(a);
    });
    expect(out[0].data).toEqual(['x', 'y', 'x', 'y']);
  });
});

describe('count, countByValue, reduce', () => {
  it('count: the number of records of each batch, 0 for an empty batch, in one partition', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) =>
      ctx.queueStream([['a', 'b', 'c'], [], ['d']], { numPartitions: 3 }).count(),
    );
    expect(out.map((b) => [b.time, b.partitions])).toEqual([
      [1000, [[3]]],
      [2000, [[0]]],
      [3000, [[1]]],
    ]);
  });

  it('count counts duplicates', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([[1, 1, 1, 1]], { numPartitions: 2 }).count());
    expect(out[0].data).toEqual([4]);
  });

  it('countByValue: [value, occurrences] for each distinct value', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx.queueStream([['a', 'b', 'a', 'c', 'a'], []], { numPartitions: 2 }).countByValue(),
    );
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 3],
          ['b', 1],
          ['c', 1],
        ],
      },
      { time: 2000, data: [] },
    ]);
  });

  it('countByValue tells 1 from "1" and groups equal tuples', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream<unknown>([[1, '1', 1, ['x', 1], ['x', 1], ['x', '1'], '']], { numPartitions: 3 }).countByValue(),
    );
    expect(sorted(out[0].data)).toEqual(
      sorted([
        [1, 2],
        ['1', 1],
        [['x', 1], 2],
        [['x', '1'], 1],
        ['', 1],
      ]),
    );
  });

  it('countByValue with numPartitions', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([['a', 'b', 'c', 'd', 'a']]).countByValue({ numPartitions: 3 }));
    expect(out[0].partitions).toHaveLength(3);
    expect(sorted(out[0].data)).toEqual([
      ['a', 2],
      ['b', 1],
      ['c', 1],
      ['d', 1],
    ]);
  });

  it('reduce: one record per non-empty batch; an empty batch has an entry with no record', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) =>
      ctx.queueStream([[1, 2, 3, 4], [10], []], { numPartitions: 2 }).reduce((a, b) => a + b),
    );
    expect(out.map((b) => [b.time, b.data, b.partitions])).toEqual([
      [1000, [10], [[10]]],
      [2000, [10], [[10]]],
      [3000, [], [[]]],
    ]);
  });

  it('reduce with max over several partitions', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream([[3, 9, -1, 4, 7, 2]], { numPartitions: 3 }).reduce((a, b) => Math.max(a, b)),
    );
    expect(out[0].data).toEqual([9]);
  });
});

describe('transform, transformWith, ctx.transform', () => {
  it('transform gets each batch and its time', async () => {
    const seen: number[] = [];
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx.queueStream([[1, 2], [3]], { numPartitions: 2 }).transform((b, time) => {
        seen.push(time);
        return b.map((x) => x + time);
      }),
    );
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [1001, 1002] },
      { time: 2000, data: [2003] },
    ]);
    expect(out[0].partitions).toHaveLength(2);
    expect(seen).toContain(1000);
    expect(seen).toContain(2000);
  });

  it('transform may return a plain array, taken as one partition', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx.queueStream([['x'], []], { numPartitions: 2 }).transform((_b, time) => [time, time + 1]),
    );
    expect(out.map((b) => [b.time, b.partitions])).toEqual([
      [1000, [[1000, 1001]]],
      [2000, [[2000, 2001]]],
    ]);
  });

  it('transform can join with a static dataset from ctx.parallelize', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => {
      const spam = ctx.parallelize<[string, boolean]>(
        [
          ['buy', true],
          ['cheap', true],
        ],
        2,
      );
      const words = ctx.queueStream([['buy', 'milk', 'cheap', 'buy'], ['tea']], { numPartitions: 2 }).map((w) => [w, 1] as [string, number]);
      return words.transform((b) => b.leftOuterJoin(spam).filter(([, [, isSpam]]) => !isSpam).map(([w]) => w));
    });
    expect(sortedByTime(out)).toEqual([
      { time: 1000, data: ['milk'] },
      { time: 2000, data: ['tea'] },
    ]);
  });

  it('transform can use the full batch API: reduceByKey, sortBy', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx
        .queueStream([['b', 'a', 'c', 'a', 'b', 'a']], { numPartitions: 3 })
        .transform((b) =>
          b
            .map((w) => [w, 1] as [string, number])
            .reduceByKey((x, y) => x + y)
            .sortBy(([, n]) => n, false),
        ),
    );
    expect(out[0].partitions).toEqual([
      [
        ['a', 3],
        ['b', 2],
        ['c', 1],
      ],
    ]);
  });

  it('transformWith combines the batches of two streams at the same time', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) => {
      const a = ctx.queueStream<[string, number]>([[['k', 1]], [['k', 2]], []]);
      const b = ctx.queueStream<[string, string]>([[['k', 'x']], [], [['k', 'z']]]);
      return a.transformWith(b, (x, y, time) => x.join(y).map(([k, [v, w]]) => `${time}:${k}:${v}:${w}`));
    });
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: ['1000:k:1:x'] },
      { time: 2000, data: [] },
      { time: 3000, data: [] },
    ]);
  });

  it('ctx.transform combines the batches of several streams with one function', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => {
      const a = ctx.queueStream([[1], [2]]);
      const b = ctx.queueStream([[10], []]);
      const c = ctx.queueStream([[100], [200]]);
      return ctx.transform<number>([a, b, c], (batches, time) => {
        const [x, y, z] = batches as Batch<number>[];
        return x.union(y, z).map((n) => n + time);
      });
    });
    expect(sortedByTime(out)).toEqual([
      { time: 1000, data: [1001, 1010, 1100] },
      { time: 2000, data: [2002, 2200] },
    ]);
  });
});

describe('persist and cache', () => {
  // A stream read by several outputs is computed once per batch (persist() or not).
  const job = (calls: { n: number }, persist: 'persist' | 'cache' | 'none') => (ctx: Parameters<Parameters<typeof runBatches>[1]>[0]) => {
    let mapped: DStream<number> = ctx.queueStream([[1, 2, 3], [4, 5]], { numPartitions: 2 }).map((x) => {
      calls.n++;
      return x * 2;
    });
    if (persist === 'persist') mapped = mapped.persist();
    if (persist === 'cache') mapped = mapped.cache();
    mapped.count().print();
    mapped.foreachRDD(async (b) => {
      await b.collect();
    });
    return mapped;
  };

  for (const mode of ['persist', 'cache', 'none'] as const) {
    it(`a stream used by several outputs is computed once per batch (${mode})`, async () => {
      const calls = { n: 0 };
      const out = await runBatches({ batchInterval: interval, batches: 2 }, job(calls, mode));
      expect(dataByTime(out)).toEqual([
        { time: 1000, data: [2, 4, 6] },
        { time: 2000, data: [8, 10] },
      ]);
      expect(calls.n).toBe(5);
    });
  }

  it('a stream read by two derived streams is computed once per batch', async () => {
    const calls = { n: 0 };
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => {
      const mapped = ctx.queueStream([[1, 2, 3], [4, 5]], { numPartitions: 2 }).map((x) => {
        calls.n++;
        return x * 2;
      });
      mapped.count().print();
      return mapped.map((x) => x + 1);
    });
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [3, 5, 7] },
      { time: 2000, data: [9, 11] },
    ]);
    expect(calls.n).toBe(5);
  });

  it('persist() and cache() return the same stream', async () => {
    await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
      const s = ctx.queueStream([[1]]);
      expect(s.persist()).toBe(s);
      expect(s.cache()).toBe(s);
      return s;
    });
  });
});

describe('slice', () => {
  it('returns the remembered batches with from <= time <= to, oldest first', async () => {
    const seen: [number, number[][]][] = [];
    await runBatches({ batchInterval: interval, batches: 4 }, (ctx) => {
      ctx.remember('3s');
      const s = ctx.queueStream([[1], [2, 3], [4], [5]], { numPartitions: 2 });
      s.foreachRDD(async (_b, time) => {
        const batches = await s.slice(time - 2000, time);
        seen.push([time, await Promise.all(batches.map((b) => b.collect()))]);
      });
      return s;
    });
    expect(seen).toEqual([
      [1000, [[1]]],
      [2000, [[1], [2, 3]]],
      [3000, [[1], [2, 3], [4]]],
      [4000, [[2, 3], [4], [5]]],
    ]);
  });

  it('works on derived streams', async () => {
    const seen: number[][] = [];
    await runBatches({ batchInterval: interval, batches: 3 }, (ctx) => {
      ctx.remember(5000);
      const counts = ctx.queueStream([['a', 'b'], ['c'], []]).count();
      counts.foreachRDD(async (_b, time) => {
        const batches = await counts.slice(1000, time);
        seen.push((await Promise.all(batches.map((b) => b.collect()))).flat());
      });
      return counts;
    });
    expect(seen).toEqual([[2], [2, 1], [2, 1, 0]]);
  });

  it('refuses to run outside a running job', async () => {
    let result: Promise<unknown> | undefined;
    await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
      const s = ctx.queueStream([[1]]);
      result = s.slice(0, 1000).then(
        () => 'resolved',
        (e: unknown) => e,
      );
      return s;
    });
    const e = await result;
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).name).toBe('SluiceError');
    expect((e as Error).message).toContain('slice()');
  });
});
