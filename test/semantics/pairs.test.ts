import { describe, expect, it } from 'vitest';
import type { DStream } from 'sluice';
import { runBatches } from 'sluice/testing';
import { canon, keyPartitions, sorted, sortedByTime } from '../helpers/semantics.ts';

const interval = 1000;

/** Keys of several kinds that must not be confused: '' and 0 and '0' and false, tuples. */
type OddKey = string | number | boolean | [string, string | number];
// Tuples are fresh arrays each time: equal tuples must still group together.
const oddPairs = (): [OddKey, number][] => [
  ['', 1],
  [0, 2],
  ['0', 3],
  [['a', 1], 4],
  ['', 5],
  [0, 6],
  [['a', 1], 7],
  [['a', '1'], 8],
  [false, 9],
  [['a', 1], 10],
];

/** 12 keys, each batch in another order, so keys meet different map partitions. */
const manyKeys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
const stableBatches: [string, number][][] = [
  manyKeys.map((k, i) => [k, i]),
  [...manyKeys].reverse().map((k) => [k, 1]),
  manyKeys.filter((_, i) => i % 3 !== 0).map((k) => [k, 2]),
  [...manyKeys.slice(6), ...manyKeys.slice(0, 6)].flatMap((k) => [
    [k, 3],
    [k, 4],
  ]),
];

/** Runs a pair operator on the stable batches; checks that every key is in one partition in every batch. */
async function checkStablePartitions<R>(op: (s: DStream<[string, number]>) => DStream<[string, R]>, numPartitions: number): Promise<Map<string, number>> {
  const out = await runBatches({ batchInterval: interval, batches: stableBatches.length }, (ctx) => op(ctx.queueStream(stableBatches, { numPartitions: 3 })));
  for (const b of out) expect(b.partitions).toHaveLength(numPartitions);
  const where = keyPartitions(out);
  expect(where.size).toBe(12);
  // 12 keys over 4 partitions: a hash partitioner that puts them all in one would be broken.
  expect(new Set(where.values()).size).toBeGreaterThan(1);
  return where;
}

describe('mapValues and flatMapValues', () => {
  it('mapValues applies the function to values and keeps keys and partitions', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx
        .queueStream<[string, number]>(
          [
            [
              ['a', 1],
              ['b', 2],
              ['a', 3],
            ],
            [],
          ],
          { numPartitions: 2 },
        )
        .mapValues((v) => v * 10),
    );
    expect(out.map((b) => b.partitions)).toEqual([
      [
        [['a', 10]],
        [
          ['b', 20],
          ['a', 30],
        ],
      ],
      [[], []],
    ]);
  });

  it('mapValues keeps odd keys as they are', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([oddPairs()]).mapValues((v) => -v));
    expect(out[0].data).toEqual(oddPairs().map(([k, v]) => [k, -v]));
  });

  it('flatMapValues: zero or more values per pair, each with the key', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx
        .queueStream<[string, string]>(
          [
            [
              ['a', 'x,y'],
              ['b', ''],
              ['c', 'z'],
            ],
            [],
          ],
          { numPartitions: 2 },
        )
        .flatMapValues((csv) => (csv === '' ? [] : csv.split(','))),
    );
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 'x'],
          ['a', 'y'],
          ['c', 'z'],
        ],
      },
      { time: 2000, data: [] },
    ]);
  });

  it('flatMapValues accepts generators', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx
        .queueStream<[[string, number], number]>([
          [
            [['t', 1], 2],
            [['t', 2], 0],
          ],
        ])
        .flatMapValues(function* (n) {
          for (let i = 0; i < n; i++) yield i;
        }),
    );
    expect(out[0].data).toEqual([
      [['t', 1], 0],
      [['t', 1], 1],
    ]);
  });
});

describe('groupByKey', () => {
  it('groups all values of each key of a batch, across input partitions; empty batches give empty partitions', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) =>
      ctx
        .queueStream<[string, number]>(
          [
            [
              ['a', 1],
              ['b', 2],
              ['a', 3],
              ['c', 4],
              ['a', 5],
              ['b', 6],
            ],
            [],
            [['c', 7]],
          ],
          { numPartitions: 3 },
        )
        .groupByKey(),
    );
    expect(out.map((b) => b.partitions.length)).toEqual([3, 3, 3]);
    expect(out.map((b) => ({ time: b.time, data: sorted(b.data.map(([k, vs]) => [k, sorted(vs)])) }))).toEqual([
      {
        time: 1000,
        data: [
          ['a', [1, 3, 5]],
          ['b', [2, 6]],
          ['c', [4]],
        ],
      },
      { time: 2000, data: [] },
      { time: 3000, data: [['c', [7]]] },
    ]);
    expect(out[1].partitions).toEqual([[], [], []]);
  });

  it('keeps duplicate values', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx
        .queueStream<[string, string]>([
          [
            ['k', 'v'],
            ['k', 'v'],
            ['k', 'v'],
          ],
        ])
        .groupByKey(),
    );
    expect(out[0].data).toEqual([['k', ['v', 'v', 'v']]]);
  });

  it("tells '', 0, '0' and false apart and groups equal tuple keys", async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([oddPairs()], { numPartitions: 3 }).groupByKey({ numPartitions: 4 }));
    expect(sorted(out[0].data.map(([k, vs]) => [k, sorted(vs)]))).toEqual(
      sorted([
        ['', [1, 5]],
        [0, [2, 6]],
        ['0', [3]],
        [['a', 1], sorted([4, 7, 10])],
        [['a', '1'], [8]],
        [false, [9]],
      ]),
    );
  });

  it('numPartitions sets the partition count, and a key is in the same partition in every batch', async () => {
    await checkStablePartitions((s) => s.groupByKey({ numPartitions: 4 }), 4);
  });
});

describe('reduceByKey', () => {
  it('combines the values of each key of each batch', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) =>
      ctx
        .queueStream(
          [
            ['a b a', 'c a b'],
            [],
            ['b', 'b'],
          ],
          { numPartitions: 2 },
        )
        .flatMap((l) => l.split(' '))
        .map((w) => [w, 1] as [string, number])
        .reduceByKey((x, y) => x + y),
    );
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 3],
          ['b', 2],
          ['c', 1],
        ],
      },
      { time: 2000, data: [] },
      { time: 3000, data: [['b', 2]] },
    ]);
  });

  it('a key with one value keeps it as is (the function is not called)', async () => {
    let calls = 0;
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream<[string, number]>([[['only', 42]]]).reduceByKey((x, y) => {
        calls++;
        return x + y;
      }),
    );
    expect(out[0].data).toEqual([['only', 42]]);
    expect(calls).toBe(0);
  });

  it("tells '', 0, '0' and false apart and groups equal tuple keys", async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([oddPairs()], { numPartitions: 2 }).reduceByKey((x, y) => x + y));
    expect(sorted(out[0].data)).toEqual(
      sorted([
        ['', 6],
        [0, 8],
        ['0', 3],
        [['a', 1], 21],
        [['a', '1'], 8],
        [false, 9],
      ]),
    );
  });

  it('partition count: numPartitions, else defaultParallelism, else the input partition count', async () => {
    const input: [string, number][][] = [
      [
        ['a', 1],
        ['b', 2],
      ],
      [],
    ];
    const withOption = await runBatches({ batchInterval: interval, batches: 2, defaultParallelism: 3 }, (ctx) =>
      ctx.queueStream(input, { numPartitions: 2 }).reduceByKey((x, y) => x + y, { numPartitions: 5 }),
    );
    expect(withOption.map((b) => b.partitions.length)).toEqual([5, 5]);
    const withDefault = await runBatches({ batchInterval: interval, batches: 2, defaultParallelism: 3 }, (ctx) =>
      ctx.queueStream(input, { numPartitions: 2 }).reduceByKey((x, y) => x + y),
    );
    expect(withDefault.map((b) => b.partitions.length)).toEqual([3, 3]);
    const inherited = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => ctx.queueStream(input, { numPartitions: 2 }).reduceByKey((x, y) => x + y));
    expect(inherited.map((b) => b.partitions.length)).toEqual([2, 2]);
    for (const out of [withOption, withDefault, inherited]) {
      expect(sortedByTime(out)).toEqual([
        {
          time: 1000,
          data: [
            ['a', 1],
            ['b', 2],
          ],
        },
        { time: 2000, data: [] },
      ]);
    }
  });

  it('a key is in the same partition in every batch, and in every run', async () => {
    const first = await checkStablePartitions((s) => s.reduceByKey((x, y) => x + y, { numPartitions: 4 }), 4);
    const second = await checkStablePartitions((s) => s.reduceByKey((x, y) => x * y, { numPartitions: 4 }), 4);
    expect(second).toEqual(first);
  });

  it('the same key lands in the same partition for every pair operator with the same partition count (hash partitioning)', async () => {
    const reduced = await checkStablePartitions((s) => s.reduceByKey((x, y) => x + y, { numPartitions: 4 }), 4);
    const grouped = await checkStablePartitions((s) => s.groupByKey({ numPartitions: 4 }), 4);
    const viaDefault = await runBatches({ batchInterval: interval, batches: stableBatches.length, defaultParallelism: 4 }, (ctx) =>
      ctx.queueStream(stableBatches).reduceByKey((x, y) => x + y),
    );
    expect(grouped).toEqual(reduced);
    expect(keyPartitions(viaDefault)).toEqual(reduced);
  });
});

describe('combineByKey', () => {
  it('average per key', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) =>
      ctx
        .queueStream<[string, number]>(
          [
            [
              ['a', 1],
              ['a', 2],
              ['b', 10],
              ['a', 6],
              ['c', 5],
              ['c', 6],
            ],
            [],
          ],
          { numPartitions: 2 },
        )
        .combineByKey(
          (v) => [v, 1] as [number, number],
          ([s, n], v) => [s + v, n + 1] as [number, number],
          ([s1, n1], [s2, n2]) => [s1 + s2, n1 + n2] as [number, number],
          { numPartitions: 3 },
        )
        .mapValues(([s, n]) => s / n),
    );
    expect(out.map((b) => b.partitions.length)).toEqual([3, 3]);
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 3],
          ['b', 10],
          ['c', 5.5],
        ],
      },
      { time: 2000, data: [] },
    ]);
  });

  it('creates a combiner per key per input partition, merges values into it, and merges combiners across partitions', async () => {
    const calls = { create: 0, mergeValue: 0, mergeCombiners: 0 };
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx
        .queueStream<[string, number]>(
          [
            [
              ['a', 1],
              ['a', 2],
              ['a', 3],
              ['b', 10],
            ],
          ],
          { numPartitions: 2 },
        )
        .combineByKey(
          (v) => {
            calls.create++;
            return { values: [v] };
          },
          (c, v) => {
            calls.mergeValue++;
            return { values: [...c.values, v] };
          },
          (c1, c2) => {
            calls.mergeCombiners++;
            return { values: [...c1.values, ...c2.values] };
          },
        ),
    );
    // Input partitions: [a1, a2] and [a3, b10]: combiners a, a, b; a2 merged as a value; the two a's merged.
    expect(sorted(out[0].data.map(([k, c]) => [k, sorted(c.values)]))).toEqual([
      ['a', [1, 2, 3]],
      ['b', [10]],
    ]);
    expect(calls).toEqual({ create: 3, mergeValue: 1, mergeCombiners: 1 });
  });

  it('works with odd keys', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream([oddPairs()], { numPartitions: 3 }).combineByKey(
        (v) => [v],
        (c, v) => [...c, v],
        (a, b) => [...a, ...b],
      ),
    );
    const byKey = new Map(out[0].data.map(([k, vs]) => [canon(k), sorted(vs)]));
    expect(byKey).toEqual(
      new Map([
        [canon(''), [1, 5]],
        [canon(0), [2, 6]],
        [canon('0'), [3]],
        [canon(['a', 1]), sorted([4, 7, 10])],
        [canon(['a', '1']), [8]],
        [canon(false), [9]],
      ]),
    );
  });

  it('a key is in the same partition in every batch', async () => {
    await checkStablePartitions(
      (s) =>
        s.combineByKey(
          (v) => v,
          (c, v) => c + v,
          (a, b) => a + b,
          { numPartitions: 4 },
        ),
      4,
    );
  });
});

describe('partition counts of keyed shuffles', () => {
  const input: [string, number][][] = [
    [
      ['a', 1],
      ['b', 2],
      ['a', 3],
    ],
    [],
  ];
  const ops: [string, (s: DStream<[string, number]>, o?: { numPartitions: number }) => DStream<[string, unknown]>][] = [
    ['groupByKey', (s, o) => s.groupByKey(o)],
    ['reduceByKey', (s, o) => s.reduceByKey((x, y) => x + y, o)],
    [
      'combineByKey',
      (s, o) =>
        s.combineByKey(
          (v) => [v],
          (c, v) => [...c, v],
          (x, y) => [...x, ...y],
          o,
        ),
    ],
    ['countByValue', (s, o) => s.map(([k]) => k).countByValue(o)],
  ];
  for (const [name, op] of ops) {
    it(`${name}: numPartitions, else defaultParallelism, else the input partition count`, async () => {
      const run = async (defaultParallelism: number | undefined, o?: { numPartitions: number }) => {
        const out = await runBatches({ batchInterval: interval, batches: 2, defaultParallelism }, (ctx) => op(ctx.queueStream(input, { numPartitions: 2 }), o));
        expect(sorted(out[0].data.map(([k]) => k))).toEqual(['a', 'b']);
        expect(out[1].data).toEqual([]);
        return out.map((b) => b.partitions.length);
      };
      expect(await run(undefined)).toEqual([2, 2]);
      expect(await run(3)).toEqual([3, 3]);
      expect(await run(3, { numPartitions: 6 })).toEqual([6, 6]);
      expect(await run(undefined, { numPartitions: 1 })).toEqual([1, 1]);
    });
  }
});
