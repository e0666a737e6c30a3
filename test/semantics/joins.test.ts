import { describe, expect, it } from 'vitest';
import type { DStream, StreamingContext } from 'sluice';
import { runBatches } from 'sluice/testing';
import { keyPartitions, sorted } from '../helpers/semantics.ts';

const interval = 1000;

// Four batches of two streams (Spark's join semantics per batch):
// 1: duplicates on both sides of k1 (cross product), k2 on both, onlyA / onlyB on one side
// 2: left side empty; 3: right side empty; 4: both empty.
const left: [string, number][][] = [
  [
    ['k1', 1],
    ['k2', 3],
    ['k1', 2],
    ['onlyA', 4],
  ],
  [],
  [['k1', 5]],
  [],
];
const right: [string, string][][] = [
  [
    ['k1', 'x'],
    ['onlyB', 'w'],
    ['k2', 'z'],
    ['k1', 'y'],
  ],
  [['k1', 'x']],
  [],
  [],
];

function streams(ctx: StreamingContext): [DStream<[string, number]>, DStream<[string, string]>] {
  return [ctx.queueStream(left, { numPartitions: 2 }), ctx.queueStream(right, { numPartitions: 3 })];
}

/** Each batch's records in canonical order; `undefined` stays `undefined`. */
function byTime<T>(out: { time: number; data: T[] }[]): [number, T[]][] {
  return out.map((b) => [b.time, sorted(b.data)]);
}

type Key = string | number | [string, string | number];
const oddLeft = (): [Key, number][] => [
  ['', 1],
  [0, 2],
  [['a', 1], 3],
  ['0', 4],
  [['a', 1], 5],
];
const oddRight = (): [Key, string][] => [
  ['', 'e'],
  [0, 'z'],
  [['a', 1], 't'],
  [['a', '1'], 's'],
];

describe('join', () => {
  it('inner join per batch: the cross product of the values of each key on both sides', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 4 }, (ctx) => {
      const [a, b] = streams(ctx);
      return a.join(b);
    });
    expect(byTime(out)).toStrictEqual([
      [
        1000,
        sorted([
          ['k1', [1, 'x']],
          ['k1', [1, 'y']],
          ['k1', [2, 'x']],
          ['k1', [2, 'y']],
          ['k2', [3, 'z']],
        ]),
      ],
      [2000, []],
      [3000, []],
      [4000, []],
    ]);
  });

  it('partition count: numPartitions, else defaultParallelism, else the larger side', async () => {
    const counts = async (opts: { numPartitions?: number; defaultParallelism?: number }) => {
      const out = await runBatches({ batchInterval: interval, batches: 4, defaultParallelism: opts.defaultParallelism }, (ctx) => {
        const [a, b] = streams(ctx);
        return opts.numPartitions === undefined ? a.join(b) : a.join(b, { numPartitions: opts.numPartitions });
      });
      expect(out.map((x) => x.data.length)).toEqual([5, 0, 0, 0]);
      return out.map((x) => x.partitions.length);
    };
    expect(await counts({})).toEqual([3, 3, 3, 3]);
    expect(await counts({ defaultParallelism: 4 })).toEqual([4, 4, 4, 4]);
    expect(await counts({ numPartitions: 5, defaultParallelism: 4 })).toEqual([5, 5, 5, 5]);
    expect(await counts({ numPartitions: 1 })).toEqual([1, 1, 1, 1]);
  });

  it("odd keys: '', 0, '0' and tuples match only equal keys", async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream([oddLeft()], { numPartitions: 2 }).join(ctx.queueStream([oddRight()]), { numPartitions: 3 }),
    );
    expect(sorted(out[0].data)).toStrictEqual(
      sorted([
        ['', [1, 'e']],
        [0, [2, 'z']],
        [['a', 1], [3, 't']],
        [['a', 1], [5, 't']],
      ]),
    );
  });
});

describe('leftOuterJoin', () => {
  it('keeps left keys without a match, with undefined on the right', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 4 }, (ctx) => {
      const [a, b] = streams(ctx);
      return a.leftOuterJoin(b, { numPartitions: 2 });
    });
    expect(out.map((x) => x.partitions.length)).toEqual([2, 2, 2, 2]);
    expect(byTime(out)).toStrictEqual([
      [
        1000,
        sorted([
          ['k1', [1, 'x']],
          ['k1', [1, 'y']],
          ['k1', [2, 'x']],
          ['k1', [2, 'y']],
          ['k2', [3, 'z']],
          ['onlyA', [4, undefined]],
        ]),
      ],
      [2000, []],
      [3000, [['k1', [5, undefined]]]],
      [4000, []],
    ]);
  });

  it('odd keys', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([oddLeft()], { numPartitions: 2 }).leftOuterJoin(ctx.queueStream([oddRight()])));
    expect(sorted(out[0].data)).toStrictEqual(
      sorted([
        ['', [1, 'e']],
        [0, [2, 'z']],
        [['a', 1], [3, 't']],
        [['a', 1], [5, 't']],
        ['0', [4, undefined]],
      ]),
    );
  });
});

describe('rightOuterJoin', () => {
  it('keeps right keys without a match, with undefined on the left', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 4 }, (ctx) => {
      const [a, b] = streams(ctx);
      return a.rightOuterJoin(b);
    });
    expect(out.map((x) => x.partitions.length)).toEqual([3, 3, 3, 3]);
    expect(byTime(out)).toStrictEqual([
      [
        1000,
        sorted([
          ['k1', [1, 'x']],
          ['k1', [1, 'y']],
          ['k1', [2, 'x']],
          ['k1', [2, 'y']],
          ['k2', [3, 'z']],
          ['onlyB', [undefined, 'w']],
        ]),
      ],
      [2000, [['k1', [undefined, 'x']]]],
      [3000, []],
      [4000, []],
    ]);
  });

  it('odd keys', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([oddLeft()]).rightOuterJoin(ctx.queueStream([oddRight()], { numPartitions: 2 })));
    expect(sorted(out[0].data)).toStrictEqual(
      sorted([
        ['', [1, 'e']],
        [0, [2, 'z']],
        [['a', 1], [3, 't']],
        [['a', 1], [5, 't']],
        [['a', '1'], [undefined, 's']],
      ]),
    );
  });
});

describe('fullOuterJoin', () => {
  it('keeps keys of either side, undefined for the missing side', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 4, defaultParallelism: 4 }, (ctx) => {
      const [a, b] = streams(ctx);
      return a.fullOuterJoin(b);
    });
    expect(out.map((x) => x.partitions.length)).toEqual([4, 4, 4, 4]);
    expect(byTime(out)).toStrictEqual([
      [
        1000,
        sorted([
          ['k1', [1, 'x']],
          ['k1', [1, 'y']],
          ['k1', [2, 'x']],
          ['k1', [2, 'y']],
          ['k2', [3, 'z']],
          ['onlyA', [4, undefined]],
          ['onlyB', [undefined, 'w']],
        ]),
      ],
      [2000, [['k1', [undefined, 'x']]]],
      [3000, [['k1', [5, undefined]]]],
      [4000, []],
    ]);
    expect(out[3].partitions).toEqual([[], [], [], []]);
  });

  it('odd keys', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream([oddLeft()], { numPartitions: 3 }).fullOuterJoin(ctx.queueStream([oddRight()], { numPartitions: 2 }), { numPartitions: 2 }),
    );
    expect(sorted(out[0].data)).toStrictEqual(
      sorted([
        ['', [1, 'e']],
        [0, [2, 'z']],
        [['a', 1], [3, 't']],
        [['a', 1], [5, 't']],
        ['0', [4, undefined]],
        [['a', '1'], [undefined, 's']],
      ]),
    );
  });
});

describe('cogroup', () => {
  const normalise = <K, V, W>(data: [K, [V[], W[]]][]) => sorted(data.map(([k, [vs, ws]]) => [k, [sorted(vs), sorted(ws)]]));

  it('for each key of either side, the values of each side (empty for a missing side)', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 4 }, (ctx) => {
      const [a, b] = streams(ctx);
      return a.cogroup(b, { numPartitions: 3 });
    });
    expect(out.map((x) => x.partitions.length)).toEqual([3, 3, 3, 3]);
    expect(out.map((x) => [x.time, normalise(x.data)])).toStrictEqual([
      [
        1000,
        sorted([
          ['k1', [sorted([1, 2]), sorted(['x', 'y'])]],
          ['k2', [[3], ['z']]],
          ['onlyA', [[4], []]],
          ['onlyB', [[], ['w']]],
        ]),
      ],
      [2000, [['k1', [[], ['x']]]]],
      [3000, [['k1', [[5], []]]]],
      [4000, []],
    ]);
  });

  it('each key appears once per batch', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
      const [a, b] = streams(ctx);
      return a.cogroup(b);
    });
    expect(sorted(out[0].data.map(([k]) => k))).toEqual(['k1', 'k2', 'onlyA', 'onlyB']);
  });

  it('odd keys', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([oddLeft()], { numPartitions: 2 }).cogroup(ctx.queueStream([oddRight()], { numPartitions: 2 })));
    expect(normalise(out[0].data)).toStrictEqual(
      sorted([
        ['', [[1], ['e']]],
        [0, [[2], ['z']]],
        [['a', 1], [sorted([3, 5]), ['t']]],
        ['0', [[4], []]],
        [['a', '1'], [[], ['s']]],
      ]),
    );
  });
});

describe('partition placement of join results', () => {
  const keys = Array.from({ length: 10 }, (_, i) => `u${i}`);
  const a: [string, number][][] = [keys.map((k, i) => [k, i]), [...keys].reverse().map((k) => [k, 0]), keys.slice(3).map((k) => [k, 1])];
  const b: [string, string][][] = [[...keys].reverse().map((k) => [k, 'x']), keys.map((k) => [k, 'y']), keys.slice(0, 8).map((k) => [k, 'z'])];

  for (const op of ['join', 'leftOuterJoin', 'rightOuterJoin', 'fullOuterJoin', 'cogroup'] as const) {
    it(`${op}: a key lands in the same partition in every batch`, async () => {
      const out = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) => {
        const x = ctx.queueStream(a, { numPartitions: 2 });
        const y = ctx.queueStream(b, { numPartitions: 3 });
        return (x[op] as (o: DStream<[string, string]>, opts: { numPartitions: number }) => DStream<[string, unknown]>).call(x, y, { numPartitions: 4 });
      });
      for (const batch of out) expect(batch.partitions).toHaveLength(4);
      const where = keyPartitions(out);
      expect(where.size).toBe(10);
      expect(new Set(where.values()).size).toBeGreaterThan(1);
    });
  }

  it('join and reduceByKey with the same partition count place a key in the same partition', async () => {
    const joined = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) =>
      ctx.queueStream(a, { numPartitions: 2 }).join(ctx.queueStream(b, { numPartitions: 3 }), { numPartitions: 4 }),
    );
    const reduced = await runBatches({ batchInterval: interval, batches: 3 }, (ctx) => ctx.queueStream(a).reduceByKey((x, y) => x + y, { numPartitions: 4 }));
    expect(keyPartitions(joined)).toEqual(keyPartitions(reduced));
  });
});

describe('partition counts of joins', () => {
  for (const op of ['join', 'leftOuterJoin', 'rightOuterJoin', 'fullOuterJoin', 'cogroup'] as const) {
    it(`${op}: numPartitions, else defaultParallelism, else the larger side`, async () => {
      const run = async (defaultParallelism: number | undefined, o: { numPartitions?: number }) => {
        const out = await runBatches({ batchInterval: interval, batches: 4, defaultParallelism }, (ctx) => {
          const [x, y] = streams(ctx);
          return (x[op] as (o: DStream<[string, string]>, opts: { numPartitions?: number }) => DStream<[string, unknown]>).call(x, y, o);
        });
        expect(out[3].data).toEqual([]);
        return out.map((b) => b.partitions.length);
      };
      expect(await run(undefined, {})).toEqual([3, 3, 3, 3]);
      expect(await run(2, {})).toEqual([2, 2, 2, 2]);
      expect(await run(2, { numPartitions: 7 })).toEqual([7, 7, 7, 7]);
    });
  }
});
