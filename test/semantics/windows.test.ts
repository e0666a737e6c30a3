import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DStream, JobDefinitionError, type StreamingContext } from 'sluice';
import { runBatches } from 'sluice/testing';
import { PROTOCOL_STEPS, type ProtocolStep } from '../../lib/engine/coordinator.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import { readSavedBatches, type SavedBatch } from '../helpers/outputs.ts';
import { caught, dataByTime, keyPartitions, makeTempDir, removeTempDir, sorted, sortedByTime } from '../helpers/semantics.ts';
import { groupsByTime, rawWindow, slideTimes, sumByKey } from '../helpers/windows.ts';

// Spark Streaming programming guide, "Window Operations": a windowed stream outputs at every
// multiple of the slide interval the records of the batches in the window (t - window, t]; window
// and slide are multiples of the parent's slide (here the batch interval). Batch i of a queueStream
// is at (i + 1) × interval, so the first windows reach back before the first batch.

const interval = 1000;
const add = (a: number, b: number) => a + b;
const sub = (a: number, b: number) => a - b;

/** Runs `op` on a queue of `batches` (then empty batches up to `n`). */
function run<T, R>(batches: T[][], op: (s: DStream<T>) => DStream<R>, n = batches.length, numPartitions = 1) {
  return runBatches({ batchInterval: interval, batches: n }, (ctx) => op(ctx.queueStream(batches, { numPartitions })));
}

/** Keys entering and leaving: a and b in the first batches, c later, then nothing. */
const comings: [string, number][][] = [
  [
    ['a', 1],
    ['b', 1],
  ],
  [['a', 1]],
  [['c', 5]],
  [],
  [],
];

describe('window', () => {
  it('tumbling window (window = slide): each batch in exactly one window, outputs only at multiples of the slide', async () => {
    const out = await run([[1, 2], [3], [4], [5, 6], [7]], (s) => s.window(2000, 2000));
    expect(sortedByTime(out)).toEqual([
      { time: 2000, data: [1, 2, 3] },
      { time: 4000, data: [4, 5, 6] },
    ]);
  });

  it('sliding window (window > slide): the first windows hold what there is so far, later ones the last 3 batches', async () => {
    const out = await run([[1], [2], [3], [4], [5]], (s) => s.window(3000, 1000));
    expect(sortedByTime(out)).toEqual([
      { time: 1000, data: [1] },
      { time: 2000, data: [1, 2] },
      { time: 3000, data: [1, 2, 3] },
      { time: 4000, data: [2, 3, 4] },
      { time: 5000, data: [3, 4, 5] },
    ]);
  });

  it('the slide defaults to the batch interval, and durations may be strings', async () => {
    const a = await run([[1], [2], [3]], (s) => s.window(2000));
    const b = await run([[1], [2], [3]], (s) => s.window('2s', '1s'));
    expect(sortedByTime(a)).toEqual([
      { time: 1000, data: [1] },
      { time: 2000, data: [1, 2] },
      { time: 3000, data: [2, 3] },
    ]);
    expect(sortedByTime(b)).toEqual(sortedByTime(a));
  });

  it('a slide of 2 batches with a window of 4: outputs at 2000, 4000, 6000 over (t - 4000, t]', async () => {
    const out = await run([[1], [2], [3], [4], [5], [6], [7]], (s) => s.window(4000, 2000));
    expect(sortedByTime(out)).toEqual([
      { time: 2000, data: [1, 2] },
      { time: 4000, data: [1, 2, 3, 4] },
      { time: 6000, data: [3, 4, 5, 6] },
    ]);
  });

  it('a slide of 3 batches: outputs only at multiples of 3000, never at other batch times', async () => {
    const out = await run([[1], [2], [3], [4], [5], [6], [7], [8]], (s) => s.window(4000, 3000));
    expect(sortedByTime(out)).toEqual([
      { time: 3000, data: [1, 2, 3] },
      { time: 6000, data: [3, 4, 5, 6] },
    ]);
  });

  it('a window that is not a multiple of the slide (window 3, slide 2)', async () => {
    const out = await run([[1], [2], [3], [4], [5], [6]], (s) => s.window(3000, 2000));
    expect(sortedByTime(out)).toEqual([
      { time: 2000, data: [1, 2] },
      { time: 4000, data: [2, 3, 4] },
      { time: 6000, data: [4, 5, 6] },
    ]);
  });

  it('empty batches inside windows: an all-empty window still outputs (an empty batch)', async () => {
    const out = await run([[1], [], [], [2], []], (s) => s.window(2000, 1000));
    expect(sortedByTime(out)).toEqual([
      { time: 1000, data: [1] },
      { time: 2000, data: [1] },
      { time: 3000, data: [] },
      { time: 4000, data: [2] },
      { time: 5000, data: [2] },
    ]);
  });

  it('windows keep running after the queue runs dry (empty batches), until everything has left', async () => {
    const out = await run([['x'], ['y']], (s) => s.window(2000), 4);
    expect(sortedByTime(out)).toEqual([
      { time: 1000, data: ['x'] },
      { time: 2000, data: ['x', 'y'] },
      { time: 3000, data: ['y'] },
      { time: 4000, data: [] },
    ]);
  });

  it('keys entering and leaving a windowed pair stream', async () => {
    const out = await run(comings, (s) => s.window(2000));
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 1],
          ['b', 1],
        ],
      },
      {
        time: 2000,
        data: [
          ['a', 1],
          ['a', 1],
          ['b', 1],
        ],
      },
      {
        time: 3000,
        data: [
          ['a', 1],
          ['c', 5],
        ],
      },
      { time: 4000, data: [['c', 5]] },
      { time: 5000, data: [] },
    ]);
  });

  it('a window keeps duplicates and records from several input partitions', async () => {
    const out = await run(
      [
        [1, 1, 2, 3],
        [1, 4],
      ],
      (s) => s.window(2000),
      2,
      3,
    );
    expect(sortedByTime(out)).toEqual([
      { time: 1000, data: [1, 1, 2, 3] },
      { time: 2000, data: [1, 1, 1, 2, 3, 4] },
    ]);
  });

  it('numPartitions sets the output partition count', async () => {
    const out = await run([[1, 2, 3, 4, 5, 6], [7]], (s) => s.window(2000, 1000, { numPartitions: 3 }), 3, 2);
    expect(out.map((b) => b.partitions.length)).toEqual([3, 3, 3]);
    expect(sortedByTime(out).map((b) => b.data)).toEqual([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7], [7]]);
  });

  it('a window of a windowed stream: the outer window covers the inner stream’s batches in it', async () => {
    // Inner: tumbling 2-batch windows at 2000, 4000, 6000. Outer: every 4000 over (t - 4000, t].
    const out = await run([[1], [2], [3], [4], [5], [6], [7], [8]], (s) => s.window(2000, 2000).window(4000, 4000));
    expect(sortedByTime(out)).toEqual([
      { time: 4000, data: [1, 2, 3, 4] },
      { time: 8000, data: [5, 6, 7, 8] },
    ]);
  });

  it('operators after a window run at the window’s times only', async () => {
    const out = await run([[1], [2], [3], [4]], (s) => s.window(2000, 2000).map((x) => x * 10).count());
    expect(dataByTime(out)).toEqual([
      { time: 2000, data: [2] },
      { time: 4000, data: [2] },
    ]);
  });
});

describe('countByWindow', () => {
  it('counts the records in each window; an empty window counts 0', async () => {
    const out = await run([['a', 'b'], ['c'], [], [], [], ['d']], (s) => s.countByWindow(3000, 1000));
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [2] },
      { time: 2000, data: [3] },
      { time: 3000, data: [3] },
      { time: 4000, data: [1] },
      { time: 5000, data: [0] },
      { time: 6000, data: [1] },
    ]);
  });

  it('a window that has never seen a record counts 0 (not nothing)', async () => {
    const out = await run([[], [], ['x']], (s) => s.countByWindow(2000));
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [0] },
      { time: 2000, data: [0] },
      { time: 3000, data: [1] },
    ]);
  });

  it('with a longer slide it counts at multiples of the slide, over records from several partitions', async () => {
    const out = await run([[1, 2, 3], [4], [5, 6], [], [7, 8, 9, 10]], (s) => s.countByWindow(3000, 2000), 6, 2);
    expect(dataByTime(out)).toEqual([
      { time: 2000, data: [4] },
      { time: 4000, data: [3] },
      { time: 6000, data: [4] },
    ]);
    expect(out.every((b) => b.partitions.length === 1)).toBe(true);
  });
});

describe('reduceByWindow', () => {
  it('without an inverse: reduces each window; an empty window gives no record', async () => {
    const out = await run([[1], [2], [3], [], [], []], (s) => s.reduceByWindow(add, 2000, 1000));
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [1] },
      { time: 2000, data: [3] },
      { time: 3000, data: [5] },
      { time: 4000, data: [3] },
      { time: 5000, data: [] },
      { time: 6000, data: [] },
    ]);
  });

  it('without an inverse works with a function that has none (max)', async () => {
    const out = await run([[3, 9, 1], [4], [2], [8]], (s) => s.reduceByWindow((a, b) => Math.max(a, b), 2000), 4, 2);
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [9] },
      { time: 2000, data: [9] },
      { time: 3000, data: [4] },
      { time: 4000, data: [8] },
    ]);
  });

  it('with an inverse: the running value; once values have been seen an empty window gives the inverse’s zero (as Spark)', async () => {
    const out = await run([[], [1], [2], [3, 4], [], [], []], (s) => s.reduceByWindow(add, sub, 2000, 1000));
    expect(dataByTime(out)).toEqual([
      { time: 1000, data: [] },
      { time: 2000, data: [1] },
      { time: 3000, data: [3] },
      { time: 4000, data: [9] },
      { time: 5000, data: [7] },
      { time: 6000, data: [0] },
      { time: 7000, data: [0] },
    ]);
  });

  it('with an inverse and a longer slide: same values as without, where the window is not empty', async () => {
    const input = [[1, 2], [3], [4], [], [5, 6], [7], [8]];
    const inv = await run(input, (s) => s.reduceByWindow(add, sub, 3000, 2000), 8, 2);
    const plain = await run(input, (s) => s.reduceByWindow(add, 3000, 2000), 8, 2);
    expect(dataByTime(inv)).toEqual([
      { time: 2000, data: [6] },
      { time: 4000, data: [7] },
      { time: 6000, data: [18] },
      { time: 8000, data: [15] },
    ]);
    expect(dataByTime(plain)).toEqual(dataByTime(inv));
  });
});

describe('reduceByKeyAndWindow', () => {
  it('without an inverse: keys enter with their first value and leave with their last one', async () => {
    const out = await run(comings, (s) => s.reduceByKeyAndWindow(add, 2000, 1000));
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 1],
          ['b', 1],
        ],
      },
      {
        time: 2000,
        data: [
          ['a', 2],
          ['b', 1],
        ],
      },
      {
        time: 3000,
        data: [
          ['a', 1],
          ['c', 5],
        ],
      },
      { time: 4000, data: [['c', 5]] },
      { time: 5000, data: [] },
    ]);
  });

  it('with an inverse: keys whose value drops to 0 stay in the output (Spark keeps them without a filter)', async () => {
    const out = await run(comings, (s) => s.reduceByKeyAndWindow(add, sub, 2000, 1000));
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 1],
          ['b', 1],
        ],
      },
      {
        time: 2000,
        data: [
          ['a', 2],
          ['b', 1],
        ],
      },
      {
        time: 3000,
        data: [
          ['a', 1],
          ['b', 0],
          ['c', 5],
        ],
      },
      {
        time: 4000,
        data: [
          ['a', 0],
          ['b', 0],
          ['c', 5],
        ],
      },
      {
        time: 5000,
        data: [
          ['a', 0],
          ['b', 0],
          ['c', 0],
        ],
      },
    ]);
  });

  it('with an inverse and a filter: keys the filter rejects leave; the output equals the reduce without inverse', async () => {
    const out = await run(comings, (s) => s.reduceByKeyAndWindow(add, sub, 2000, 1000, { filter: ([, n]) => n !== 0 }));
    const plain = await run(comings, (s) => s.reduceByKeyAndWindow(add, 2000, 1000));
    expect(sortedByTime(out)).toEqual(sortedByTime(plain));
    expect(out.map((b) => b.data.length)).toEqual([2, 2, 2, 1, 0]);
  });

  it('a key removed by the filter comes back, from zero, when new values arrive', async () => {
    const input: [string, number][][] = [[['a', 2]], [], [], [['a', 3]], []];
    const out = await run(input, (s) => s.reduceByKeyAndWindow(add, sub, 2000, 1000, { filter: ([, n]) => n !== 0 }));
    expect(sortedByTime(out)).toEqual([
      { time: 1000, data: [['a', 2]] },
      { time: 2000, data: [['a', 2]] },
      { time: 3000, data: [] },
      { time: 4000, data: [['a', 3]] },
      { time: 5000, data: [['a', 3]] },
    ]);
  });

  it('with a longer slide (window 3, slide 2), with and without inverse', async () => {
    const input: [string, number][][] = [
      [['a', 1]],
      [
        ['a', 2],
        ['b', 1],
      ],
      [['b', 1]],
      [['c', 1]],
      [],
      [['a', 1]],
    ];
    const plain = await run(input, (s) => s.reduceByKeyAndWindow(add, 3000, 2000));
    const inv = await run(input, (s) => s.reduceByKeyAndWindow(add, sub, 3000, 2000));
    expect(sortedByTime(plain)).toEqual([
      {
        time: 2000,
        data: [
          ['a', 3],
          ['b', 1],
        ],
      },
      {
        time: 4000,
        data: [
          ['a', 2],
          ['b', 2],
          ['c', 1],
        ],
      },
      {
        time: 6000,
        data: [
          ['a', 1],
          ['c', 1],
        ],
      },
    ]);
    expect(sortedByTime(inv)).toEqual([
      sortedByTime(plain)[0],
      sortedByTime(plain)[1],
      {
        time: 6000,
        data: [
          ['a', 1],
          ['b', 0],
          ['c', 1],
        ],
      },
    ]);
  });

  it('values of a key from several input partitions and several batches are combined', async () => {
    const input: [string, number][][] = [
      [
        ['k', 1],
        ['k', 2],
        ['j', 1],
        ['k', 3],
      ],
      [
        ['k', 10],
        ['j', 1],
      ],
    ];
    for (const op of [(s: DStream<[string, number]>) => s.reduceByKeyAndWindow(add, 2000), (s: DStream<[string, number]>) => s.reduceByKeyAndWindow(add, sub, 2000)]) {
      const out = await run(input, op, 2, 3);
      expect(sortedByTime(out)).toEqual([
        {
          time: 1000,
          data: [
            ['j', 1],
            ['k', 6],
          ],
        },
        {
          time: 2000,
          data: [
            ['j', 2],
            ['k', 16],
          ],
        },
      ]);
    }
  });

  it('numPartitions sets the output partition count, each key in one partition, with and without inverse', async () => {
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const input: [string, number][][] = [keys.map((k) => [k, 1]), keys.slice(3).map((k) => [k, 2]), []];
    const plain = await run(input, (s) => s.reduceByKeyAndWindow(add, 2000, 1000, { numPartitions: 3 }), 3, 2);
    const inv = await run(input, (s) => s.reduceByKeyAndWindow(add, sub, 2000, 1000, { numPartitions: 5 }), 3, 2);
    expect(plain.map((b) => b.partitions.length)).toEqual([3, 3, 3]);
    expect(inv.map((b) => b.partitions.length)).toEqual([5, 5, 5]);
    expect(keyPartitions(plain).size).toBe(10);
    expect(keyPartitions(inv).size).toBe(10);
    expect(sorted(plain[1].data)).toEqual(sorted(keys.map((k, i) => [k, i < 3 ? 1 : 3])));
    expect(sorted(inv[1].data)).toEqual(sorted(plain[1].data));
  });

  it('the no-inverse overload with a slide and options keeps the slide (outputs only at its multiples)', async () => {
    const out = await run(comings, (s) => s.reduceByKeyAndWindow(add, 3000, 2000, { numPartitions: 2 }), 6);
    expect(sortedByTime(out)).toEqual([
      {
        time: 2000,
        data: [
          ['a', 2],
          ['b', 1],
        ],
      },
      {
        time: 4000,
        data: [
          ['a', 1],
          ['c', 5],
        ],
      },
      { time: 6000, data: [] },
    ]);
    expect(out.map((b) => b.partitions.length)).toEqual([2, 2, 2]);
  });

  it('the no-inverse overload also takes options without a slide', async () => {
    const out = await run(comings, (s) => s.reduceByKeyAndWindow(add, 2000, undefined, { numPartitions: 2 }));
    expect(out.map((b) => b.partitions.length)).toEqual([2, 2, 2, 2, 2]);
    expect(out.map((b) => b.time)).toEqual([1000, 2000, 3000, 4000, 5000]);
  });
});

describe('countByValueAndWindow', () => {
  it('counts each distinct record over the window; records whose count drops to 0 leave', async () => {
    const out = await run([['x', 'y', 'x'], ['y'], [], []], (s) => s.countByValueAndWindow(2000, 1000));
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['x', 2],
          ['y', 1],
        ],
      },
      {
        time: 2000,
        data: [
          ['x', 2],
          ['y', 2],
        ],
      },
      { time: 3000, data: [['y', 1]] },
      { time: 4000, data: [] },
    ]);
  });

  it('with a longer slide and numPartitions', async () => {
    const out = await run([[1, 2, 2], [3], [2], [], [1]], (s) => s.countByValueAndWindow(3000, 2000, { numPartitions: 2 }), 6, 2);
    expect(sortedByTime(out)).toEqual([
      {
        time: 2000,
        data: [
          [1, 1],
          [2, 2],
          [3, 1],
        ],
      },
      {
        time: 4000,
        data: [
          [2, 1],
          [3, 1],
        ],
      },
      { time: 6000, data: [[1, 1]] },
    ]);
    expect(out.map((b) => b.partitions.length)).toEqual([2, 2, 2]);
  });
});

describe('groupByKeyAndWindow', () => {
  it('all values of each key over the window', async () => {
    const input: [string, number][][] = [
      [
        ['a', 1],
        ['b', 2],
      ],
      [['a', 3]],
      [['b', 4]],
      [],
    ];
    const out = await run(input, (s) => s.groupByKeyAndWindow(2000, 1000));
    expect(groupsByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', [1]],
          ['b', [2]],
        ],
      },
      {
        time: 2000,
        data: [
          ['a', [1, 3]],
          ['b', [2]],
        ],
      },
      { time: 3000, data: [['a', [3]], ['b', [4]]] },
      { time: 4000, data: [['b', [4]]] },
    ]);
  });

  it('with a longer slide and numPartitions; duplicates kept', async () => {
    const input: [string, number][][] = [[['a', 1]], [['a', 1]], [['a', 2]], [['b', 1]]];
    const out = await run(input, (s) => s.groupByKeyAndWindow(4000, 2000, { numPartitions: 3 }), 4, 2);
    expect(groupsByTime(out)).toEqual([
      { time: 2000, data: [['a', [1, 1]]] },
      {
        time: 4000,
        data: [
          ['a', [1, 1, 2]],
          ['b', [1]],
        ],
      },
    ]);
    expect(out.map((b) => b.partitions.length)).toEqual([3, 3]);
    expect(keyPartitions(out).size).toBe(2);
  });
});

describe('a window shorter than its slide: the batches between windows are in none (as Spark)', () => {
  it("Spark's WindowOperationsSuite 'non-overlapping window': window 2 s, slide 3 s over [0]..[5] gives [1, 2] at 3 s and [4, 5] at 6 s", async () => {
    const out = await run([[0], [1], [2], [3], [4], [5]], (s) => s.window(2000, 3000));
    expect(sortedByTime(out)).toEqual([
      { time: 3000, data: [1, 2] },
      { time: 6000, data: [4, 5] },
    ]);
  });

  // Window 2 s, slide 3 s: the windows are (1000, 3000], (4000, 6000], (7000, 9000], (10000, 12000];
  // the batches at 1000, 4000, 7000 and 10000 are in none. x is only ever in those; a and b leave;
  // the last window is empty.
  const gapWindow = 2000;
  const gapSlide = 3000;
  const gapInput: [string, number][][] = [
    [['x', 7], ['a', 1]],
    [['a', 2], ['b', 1]],
    [['a', 3]],
    [['x', 1], ['b', 5]],
    [['b', 2]],
    [],
    [['a', 4], ['x', 2]],
    [['c', 1]],
    [],
    [['x', 3]],
    [],
    [],
  ];
  const times = slideTimes(gapInput.length, interval, gapSlide);
  const windowAt = (t: number) => rawWindow(gapInput, interval, t, gapWindow);
  /** The keys seen in some window up to `t`: an inverse window keeps them, at zero once they left (Spark). */
  const keptKeys = (t: number) => new Set(times.filter((w) => w <= t).flatMap((w) => windowAt(w).map(([k]) => k)));
  const sum = (pairs: [string, number][]) => pairs.reduce((n, [, v]) => n + v, 0);

  type Case = [string, (s: DStream<[string, number]>) => DStream<unknown>, (t: number) => unknown[]];
  const cases: Case[] = [
    ['window', (s) => s.window(gapWindow, gapSlide), (t) => sorted(windowAt(t))],
    ['countByWindow', (s) => s.countByWindow(gapWindow, gapSlide), (t) => [windowAt(t).length]],
    ['reduceByWindow without an inverse', (s) => s.map(([, v]) => v).reduceByWindow(add, gapWindow, gapSlide), (t) => (windowAt(t).length ? [sum(windowAt(t))] : [])],
    // Once a window has held values, an empty one gives the inverse's zero (as with any window).
    ['reduceByWindow with an inverse', (s) => s.map(([, v]) => v).reduceByWindow(add, sub, gapWindow, gapSlide), (t) => (keptKeys(t).size ? [sum(windowAt(t))] : [])],
    ['reduceByKeyAndWindow without an inverse', (s) => s.reduceByKeyAndWindow(add, gapWindow, gapSlide), (t) => sumByKey(windowAt(t))],
    [
      'reduceByKeyAndWindow with an inverse (keys that left stay at 0, keys only between windows never enter)',
      (s) => s.reduceByKeyAndWindow(add, sub, gapWindow, gapSlide),
      (t) => sumByKey([...windowAt(t), ...[...keptKeys(t)].map((k) => [k, 0] as [string, number])]),
    ],
    ['reduceByKeyAndWindow with an inverse and a filter', (s) => s.reduceByKeyAndWindow(add, sub, gapWindow, gapSlide, { filter: ([, n]) => n !== 0 }), (t) => sumByKey(windowAt(t))],
    ['countByValueAndWindow', (s) => s.countByValueAndWindow(gapWindow, gapSlide), (t) => sumByKey(windowAt(t).map((p) => [p, 1] as [[string, number], number]))],
    [
      'groupByKeyAndWindow',
      (s) => s.groupByKeyAndWindow(gapWindow, gapSlide).map(([k, vs]) => [k, sorted(vs)] as [string, number[]]),
      (t) => sorted([...new Set(windowAt(t).map(([k]) => k))].map((k) => [k, sorted(windowAt(t).filter(([j]) => j === k).map(([, v]) => v))])),
    ],
  ];

  it.each(cases)('%s: outputs at each multiple of the slide what the window (t - window, t] holds', async (_name, op, model) => {
    const out = await run(gapInput, op, gapInput.length, 2);
    expect(sortedByTime(out)).toEqual(times.map((t) => ({ time: t, data: sorted(model(t)) })));
  });

  /** A blob store that remembers every key written. */
  class RecordingBlobStore extends MemoryBlobStore {
    readonly written: string[] = [];
    override async put(key: string, body: Uint8Array | string): Promise<void> {
      this.written.push(key);
      await super.put(key, body);
    }
  }
  const sliceTime = (key: string) => Number(/\/slice-(\d+)$/.exec(key)?.[1] ?? NaN);
  const ignore = async () => {};
  const windowedJob = (ctx: StreamingContext) => {
    const s = ctx.queueStream(gapInput, { numPartitions: 2 });
    s.window(gapWindow, gapSlide, { numPartitions: 1 }).foreachRDD(ignore);
    s.reduceByKeyAndWindow(add, gapWindow, gapSlide, { numPartitions: 1 }).foreachRDD(ignore);
    s.reduceByKeyAndWindow(add, sub, gapWindow, gapSlide, { numPartitions: 2 }).foreachRDD(ignore);
  };

  it('a batch between windows writes no slice, nor does the slide’s own batch (it is read from memory)', async () => {
    const blobs = new RecordingBlobStore();
    await runBatches({ batchInterval: interval, batches: gapInput.length, blobs }, windowedJob);
    const written = blobs.written.filter((k) => k.includes('/slice-')).map(sliceTime);
    // Prepare the model: the batches a later slide reads, those in a window but not at its end.
    const inAWindowBefore = (b: number) => times.some((t) => b > t - gapWindow && b < t);
    expect(written.length).toBeGreaterThan(0);
    expect(written.filter((b) => !inAWindowBefore(b))).toEqual([]);
  });

  it.each([5, 6, 8, 9])('after %i batches only the slices the next window reads are kept', async (batches) => {
    const blobs = new MemoryBlobStore();
    await runBatches({ batchInterval: interval, batches, blobs }, windowedJob);
    const last = batches * interval;
    const next = Math.ceil((last + 1) / gapSlide) * gapSlide;
    const kept = (await blobs.list('state/')).filter((k) => k.includes('/slice-'));
    // Three windowed nodes, the inverse one in two partitions: four slices per batch the next window reads.
    const needed = [];
    for (let b = next - gapWindow + interval; b <= last; b += interval) needed.push(b, b, b, b);
    expect(kept.map(sliceTime)).toEqual(needed);
  });
});

describe('a window shorter than its slide: crash at every protocol step, resume, same output', () => {
  const job = (out: string) => (ctx: StreamingContext) => {
    const s = ctx.queueStream(gapInput3, { numPartitions: 2 });
    s.count().saveAsTextFiles(join(out, 'count'));
    s.window(2000, 3000).saveAsTextFiles(join(out, 'window'));
    s.reduceByKeyAndWindow(add, 2000, 3000).saveAsTextFiles(join(out, 'plain'));
    s.reduceByKeyAndWindow(add, sub, 2000, 3000, { numPartitions: 2 }).saveAsTextFiles(join(out, 'inverse'));
  };
  const outputs = ['count', 'window', 'plain', 'inverse'];
  const gapInput3: [string, number][][] = [[['a', 1]], [['a', 2], ['b', 1]], [['b', 3]], [['c', 1]], [['a', 5]], [], [['b', 1]]];
  const options = { batchInterval: interval, checkpointInterval: '3s' };
  class Crash extends Error {}
  let dir: string;
  let reference: Record<string, SavedBatch[]>;
  const saved = async (out: string) => Object.fromEntries(await Promise.all(outputs.map(async (n) => [n, await readSavedBatches(out, n)] as const)));
  beforeAll(async () => {
    dir = await makeTempDir();
    await runBatches({ ...options, batches: gapInput3.length, sinks: localSinks(join(dir, 'ref')) }, job(join(dir, 'ref')));
    reference = await saved(join(dir, 'ref'));
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('the uninterrupted run outputs the windows (1000, 3000] and (4000, 6000]', () => {
    const lines = (b: SavedBatch) => Object.entries(b.files).filter(([f]) => f !== '_SUCCESS').flatMap(([, text]) => text.split('\n').filter(Boolean));
    expect(reference.window.map((b) => [b.time, sorted(lines(b))])).toEqual(
      [3000, 6000].map((t) => [t, sorted(rawWindow(gapInput3, interval, t, 2000).map(([k, v]) => `(${k},${v})`))]),
    );
  });

  // Batch 2 writes a slice that the slide at 3 reads (from the store, after a crash).
  const cases = PROTOCOL_STEPS.flatMap((step) => [2, 3].map((n) => [step, n] as [ProtocolStep, number]));
  it.each(cases)('crash after %s in batch %i', async (step, batchNo) => {
    // Prepare
    const out = join(dir, `crashed-${step}-${batchNo}`);
    const common = { ...options, sinks: localSinks(out), blobs: new MemoryBlobStore(), meta: new MemoryMetaStore() };
    let crashed = false;
    const onStep = (s: ProtocolStep, t: number) => {
      if (!crashed && s === step && t === batchNo * interval) {
        crashed = true;
        throw new Crash(`${s}@${t}`);
      }
    };
    // Act
    await expect(runBatches({ ...common, batches: gapInput3.length, onStep }, job(out))).rejects.toBeInstanceOf(Crash);
    const done = (await common.meta.get<{ lastCompleted: number }>('checkpoint'))!.value.lastCompleted;
    await runBatches({ ...common, batches: gapInput3.length - done / interval }, job(out));
    // Assess
    expect(await saved(out)).toEqual(reference);
  });
});

describe('window checks when the job is built', () => {
  type Op = [string, (s: DStream<[string, number]>, window: number | string, slide?: number | string) => DStream<unknown>];
  const ops: Op[] = [
    ['window', (s, w, sl) => s.window(w, sl)],
    ['countByWindow', (s, w, sl) => s.countByWindow(w, sl)],
    ['reduceByWindow', (s, w, sl) => s.reduceByWindow((a, _b) => a, w, sl)],
    ['reduceByWindow', (s, w, sl) => s.reduceByWindow((a, _b) => a, (a) => a, w, sl)],
    ['reduceByKeyAndWindow', (s, w, sl) => s.reduceByKeyAndWindow(add, w, sl)],
    ['reduceByKeyAndWindow', (s, w, sl) => s.reduceByKeyAndWindow(add, sub, w, sl)],
    ['countByValueAndWindow', (s, w, sl) => s.countByValueAndWindow(w, sl)],
    ['groupByKeyAndWindow', (s, w, sl) => s.groupByKeyAndWindow(w, sl)],
  ];
  const build = (op: Op[1], w: number | string, sl?: number | string) => (ctx: StreamingContext) => op(ctx.queueStream<[string, number]>([[['a', 1]]]), w, sl);
  const fails = (op: Op[1], w: number | string, sl?: number | string) => caught(() => runBatches({ batchInterval: interval, batches: 1 }, build(op, w, sl)));

  ops.forEach(([name, op], i) => {
    it(`${name} #${i}: a window that is not a multiple of the batch interval is refused`, async () => {
      const e = await fails(op, 1500, 1000);
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.message).toContain(name);
      expect(e.message).toContain('window (1500 ms)');
      expect(e.message).toContain('multiple');
    });

    it(`${name} #${i}: a slide that is not a multiple of the batch interval is refused`, async () => {
      const e = await fails(op, 2000, '500ms');
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.message).toContain(name);
      expect(e.message).toContain('slide (500 ms)');
      expect(e.message).toContain('multiple');
    });

    it(`${name} #${i}: a window shorter than the slide is accepted, and still checked against the batch interval`, async () => {
      await runBatches({ batchInterval: interval, batches: 2 }, build(op, 1000, 2000));
      const e = await fails(op, 1500, 3000);
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.message).toContain('window (1500 ms)');
    });

    it(`${name} #${i}: bad durations are refused`, async () => {
      for (const bad of [0, -1000, '0s', 'soon']) {
        const e = await fails(op, bad);
        expect(e).toBeInstanceOf(JobDefinitionError);
        expect(e.message).toContain(name);
      }
    });
  });

  it('the errors are thrown by the operator call itself, before any batch runs', async () => {
    let thrown: unknown;
    const steps: string[] = [];
    const e = await caught(() =>
      runBatches({ batchInterval: interval, batches: 3, onStep: (s) => void steps.push(s) }, (ctx) => {
        try {
          ctx.queueStream([[1]]).window(1500, 2000);
        } catch (err) {
          thrown = err;
          throw err;
        }
      }),
    );
    expect(thrown).toBe(e);
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(steps).toEqual([]);
  });

  it('a window on a windowed stream must be a multiple of that stream’s slide', async () => {
    const e = await caught(() => runBatches({ batchInterval: interval, batches: 1 }, (ctx) => ctx.queueStream([[1]]).window(2000, 2000).window(3000, 2000)));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('window (3000 ms)');
    expect(e.message).toContain('2000 ms');
  });

  const badCounts = [0, -1, 1.5];
  const partitioned: [string, (s: DStream<[string, number]>, n: number) => DStream<unknown>][] = [
    ['window', (s, n) => s.window(2000, 1000, { numPartitions: n })],
    ['reduceByKeyAndWindow', (s, n) => s.reduceByKeyAndWindow(add, 2000, 1000, { numPartitions: n })],
    ['reduceByKeyAndWindow', (s, n) => s.reduceByKeyAndWindow(add, sub, 2000, 1000, { numPartitions: n })],
    ['countByValueAndWindow', (s, n) => s.countByValueAndWindow(2000, 1000, { numPartitions: n })],
    ['groupByKeyAndWindow', (s, n) => s.groupByKeyAndWindow(2000, 1000, { numPartitions: n })],
  ];
  partitioned.forEach(([name, op], i) => {
    it(`${name} #${i}: bad numPartitions is refused`, async () => {
      for (const n of badCounts) {
        const e = await caught(() => runBatches({ batchInterval: interval, batches: 1 }, (ctx) => op(ctx.queueStream<[string, number]>([[['a', 1]]]), n)));
        expect(e).toBeInstanceOf(JobDefinitionError);
        expect(e.message).toContain(name);
        expect(e.message).toContain(`numPartitions must be a whole number >= 1, got ${n}`);
      }
    });
  });
});
