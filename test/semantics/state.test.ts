import { describe, expect, it } from 'vitest';
import { defineJob, type DStream, JobDefinitionError, SluiceError, type State, StateSpec, type StreamingContext } from 'sluice';
import { type BatchOutput, runBatches } from 'sluice/testing';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { testCoordinator } from '../helpers/engine.ts';
import { caught, keyPartitions, sorted, sortedByTime } from '../helpers/semantics.ts';
import { type Collected, collectInto } from '../helpers/windows.ts';

// Spark Streaming programming guide, "UpdateStateByKey Operation", and the API docs of
// mapWithState / StateSpec / State: updateStateByKey calls the update function in every batch for
// every key that has state or new values, and returning None (here `undefined`) removes the key;
// mapWithState calls the mapping function once per record, and once more (value None,
// isTimingOut() true) for a key idle longer than the timeout, which then loses its state.

const interval = 1000;

type Pair = [string, number];

/** Words as [word, 1] pairs, one queue batch per string ('' is an empty batch). */
const words = (...batches: string[]): Pair[][] => batches.map((b) => (b === '' ? [] : b.split(' ').map((w) => [w, 1] as Pair)));

function run<R>(batches: Pair[][], op: (s: DStream<Pair>, ctx: StreamingContext) => DStream<R>, n = batches.length, numPartitions = 1): Promise<BatchOutput<R>[]> {
  return runBatches({ batchInterval: interval, batches: n, maxTaskAttempts: 1 }, (ctx) => op(ctx.queueStream(batches, { numPartitions }), ctx));
}

const count = (vs: number[], s: number | undefined) => (s ?? 0) + vs.length;

/** Calls recorded by the user functions, per batch time, sorted (the order across keys is not defined). */
function byTime<T extends { time: number }>(calls: T[]): Record<number, T[]> {
  const out: Record<number, T[]> = {};
  for (const c of calls) (out[c.time] ??= []).push(c);
  for (const t of Object.keys(out)) out[Number(t)] = sorted(out[Number(t)]);
  return out;
}

describe('updateStateByKey', () => {
  it('running counts: the stream holds every key’s state after each batch', async () => {
    const out = await run(words('a a b', 'b', '', 'c'), (s) => s.updateStateByKey(count));
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 2],
          ['b', 1],
        ],
      },
      {
        time: 2000,
        data: [
          ['a', 2],
          ['b', 2],
        ],
      },
      {
        time: 3000,
        data: [
          ['a', 2],
          ['b', 2],
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
    ]);
  });

  it('the values of a key come from several input partitions', async () => {
    const out = await run(words('a b a c a b a', 'a'), (s) => s.updateStateByKey(count), 2, 3);
    expect(sortedByTime(out).map((b) => b.data)).toEqual([
      [
        ['a', 4],
        ['b', 2],
        ['c', 1],
      ],
      [
        ['a', 5],
        ['b', 2],
        ['c', 1],
      ],
    ]);
  });

  it('returning undefined removes the key; it comes back (from undefined) only when new values arrive', async () => {
    const calls: { time: number; key: string; values: number[]; state: number | undefined }[] = [];
    const out = await run(words('a b', 'a', '', 'b', ''), (s) =>
      s.updateStateByKey<string, number, number>((values, state, key, time) => {
        calls.push({ time, key, values: [...values], state });
        return values.length === 0 ? undefined : (state ?? 0) + values.length;
      }),
    );
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 1],
          ['b', 1],
        ],
      },
      { time: 2000, data: [['a', 2]] },
      { time: 3000, data: [] },
      { time: 4000, data: [['b', 1]] },
      { time: 5000, data: [] },
    ]);
    expect(byTime(calls)).toEqual({
      1000: [
        { time: 1000, key: 'a', values: [1], state: undefined },
        { time: 1000, key: 'b', values: [1], state: undefined },
      ],
      2000: [
        { time: 2000, key: 'a', values: [1], state: 1 },
        { time: 2000, key: 'b', values: [], state: 1 },
      ],
      3000: [{ time: 3000, key: 'a', values: [], state: 2 }],
      4000: [{ time: 4000, key: 'b', values: [1], state: undefined }],
      5000: [{ time: 5000, key: 'b', values: [], state: 1 }],
    });
  });

  it('update runs every batch for every key with state, even without new values', async () => {
    const calls: [number, string, number][] = [];
    const out = await run(
      words('a b', '', '', 'c', ''),
      (s) =>
        s.updateStateByKey<string, number, number>((values, state, key, time) => {
          calls.push([time, key, values.length]);
          return (state ?? 0) + values.length;
        }),
    );
    expect(calls).toHaveLength(2 + 2 + 2 + 3 + 3);
    const perKey = (k: string) => calls.filter(([, key]) => key === k).map(([t, , n]) => [t, n]);
    expect(perKey('a')).toEqual([
      [1000, 1],
      [2000, 0],
      [3000, 0],
      [4000, 0],
      [5000, 0],
    ]);
    expect(perKey('c')).toEqual([
      [4000, 1],
      [5000, 0],
    ]);
    expect(out.map((b) => b.data.length)).toEqual([2, 2, 2, 3, 3]);
  });

  it('initial state (an array): keys start from it, and keys with only initial state are updated too', async () => {
    const seen: [number, string, number[], number | undefined][] = [];
    const out = await run(words('a', ''), (s) =>
      s.updateStateByKey<string, number, number>(
        (values, state, key, time) => {
          seen.push([time, key, [...values], state]);
          return (state ?? 0) + values.length;
        },
        {
          initial: [
            ['a', 10],
            ['z', 5],
          ],
        },
      ),
    );
    expect(sortedByTime(out).map((b) => b.data)).toEqual([
      [
        ['a', 11],
        ['z', 5],
      ],
      [
        ['a', 11],
        ['z', 5],
      ],
    ]);
    expect(sorted(seen.filter(([t]) => t === 1000))).toEqual(
      sorted([
        [1000, 'a', [1], 10],
        [1000, 'z', [], 5],
      ]),
    );
  });

  it('initial state from ctx.parallelize (several partitions)', async () => {
    const out = await run(words('a b', 'b'), (s, ctx) =>
      s.updateStateByKey(count, {
        initial: ctx.parallelize<[string, number]>(
          [
            ['a', 100],
            ['x', 7],
            ['y', 8],
          ],
          2,
        ),
      }),
    );
    expect(sortedByTime(out).map((b) => b.data)).toEqual([
      [
        ['a', 101],
        ['b', 1],
        ['x', 7],
        ['y', 8],
      ],
      [
        ['a', 101],
        ['b', 2],
        ['x', 7],
        ['y', 8],
      ],
    ]);
  });

  it('the time argument is the batch time', async () => {
    const out = await run(words('a', 'b', 'a', ''), (s) =>
      s.updateStateByKey<string, number, number>((values, state, _key, time) => (values.length ? time : state)),
    );
    expect(sortedByTime(out).map((b) => b.data)).toEqual([
      [['a', 1000]],
      [
        ['a', 1000],
        ['b', 2000],
      ],
      [
        ['a', 3000],
        ['b', 2000],
      ],
      [
        ['a', 3000],
        ['b', 2000],
      ],
    ]);
  });

  it('tuple keys made fresh in every record meet as one key', async () => {
    const input: [[string, number], number][][] = [
      [
        [['a', 1], 1],
        [['a', 1], 1],
        [['a', '1' as unknown as number], 1],
      ],
      [[['a', 1], 1]],
    ];
    const out = await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => ctx.queueStream(input).updateStateByKey(count));
    expect(sortedByTime(out).map((b) => b.data)).toEqual([
      sorted([
        [['a', 1], 2],
        [['a', '1'], 1],
      ]),
      sorted([
        [['a', 1], 3],
        [['a', '1'], 1],
      ]),
    ]);
  });

  it('numPartitions sets the output partition count; each key stays in one partition', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`).join(' ');
    const out = await run(words(keys, keys, ''), (s) => s.updateStateByKey(count, { numPartitions: 3 }), 3, 2);
    expect(out.map((b) => b.partitions.length)).toEqual([3, 3, 3]);
    const where = keyPartitions(out);
    expect(where.size).toBe(12);
    expect(new Set(where.values()).size).toBeGreaterThan(1);
    expect(out[2].data.every(([, n]) => n === 2)).toBe(true);
  });

  it('without numPartitions the state has the job’s defaultParallelism partitions', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1, defaultParallelism: 5 }, (ctx) => ctx.queueStream(words('a b')).updateStateByKey(count));
    expect(out[0].partitions).toHaveLength(5);
  });
});

describe('mapWithState', () => {
  const runningSum = (key: string, value: number | undefined, state: State<number>): [string, number] => {
    const sum = (state.getOption() ?? 0) + (value ?? 0);
    state.update(sum);
    return [key, sum];
  };

  it('calls the function once per record, in order within a key, and emits what it returns', async () => {
    let calls = 0;
    const spec = StateSpec.function((k: string, v: number | undefined, st: State<number>) => {
      calls++;
      return runningSum(k, v, st);
    });
    const out = await run(
      [
        [
          ['a', 1],
          ['a', 2],
          ['b', 3],
        ],
        [['a', 4]],
        [],
      ],
      (s) => s.mapWithState(spec),
    );
    expect(calls).toBe(4);
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 1],
          ['a', 3],
          ['b', 3],
        ],
      },
      { time: 2000, data: [['a', 7]] },
      { time: 3000, data: [] },
    ]);
  });

  it('records of a key from several input partitions are all seen', async () => {
    const input: Pair[][] = [
      [
        ['a', 1],
        ['b', 1],
        ['a', 1],
        ['a', 1],
        ['b', 1],
        ['a', 1],
      ],
    ];
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) =>
      ctx.queueStream(input, { numPartitions: 3 }).mapWithState(StateSpec.function(runningSum)).stateSnapshots(),
    );
    expect(sorted(out[0].data)).toEqual([
      ['a', 4],
      ['b', 2],
    ]);
  });

  it('the State API: exists, get, getOption, update, remove', async () => {
    type Seen = [string, string, boolean, string | undefined, string | undefined, boolean, string | undefined];
    const spec = StateSpec.function((key: string, value: string | undefined, state: State<string>): Seen => {
      const existed = state.exists();
      const before = state.getOption();
      const got = existed ? state.get() : undefined;
      if (value === 'del') state.remove();
      else if (value !== 'peek') state.update(value!);
      return [key, value!, existed, before, got, state.exists(), state.getOption()];
    });
    let snaps: BatchOutput<[string, string]>[] = [];
    const out = await runBatches({ batchInterval: interval, batches: 5 }, (ctx) => {
      const mapped = ctx.queueStream<[string, string]>([[['a', 'x']], [['a', 'peek']], [['a', 'y']], [['a', 'del']], [['a', 'peek']]]).mapWithState(spec);
      mapped.stateSnapshots().foreachRDD(async (b, time) => {
        snaps = [...snaps, { time, data: await b.collect(), partitions: [] }];
      });
      return mapped;
    });
    expect(out.map((b) => b.data)).toEqual([
      [['a', 'x', false, undefined, undefined, true, 'x']],
      [['a', 'peek', true, 'x', 'x', true, 'x']],
      [['a', 'y', true, 'x', 'x', true, 'y']],
      [['a', 'del', true, 'y', 'y', false, undefined]],
      [['a', 'peek', false, undefined, undefined, false, undefined]],
    ]);
    expect(snaps.map((b) => [b.time, b.data])).toEqual([
      [1000, [['a', 'x']]],
      [2000, [['a', 'x']]],
      [3000, [['a', 'y']]],
      [4000, []],
      [5000, []],
    ]);
  });

  it('State.get() on a key without state fails the batch with a clear error', async () => {
    const spec = StateSpec.function((_k: string, _v: number | undefined, state: State<number>) => state.get());
    const e = await caught(() => run([[['a', 1]]], (s) => s.mapWithState(spec)));
    expect(e).toBeInstanceOf(SluiceError);
    expect(e.message).toContain('State.get()');
  });

  it('returning undefined emits nothing (the state is still kept)', async () => {
    const spec = StateSpec.function((key: string, value: number | undefined, state: State<number>) => {
      const [, sum] = runningSum(key, value, state);
      return sum % 2 === 0 ? ([key, sum] as Pair) : undefined;
    });
    const out = await run([[['a', 1]], [['a', 1]], [['a', 1]], [['a', 1]]], (s) => s.mapWithState(spec));
    expect(out.map((b) => [b.time, b.data])).toEqual([
      [1000, []],
      [2000, [['a', 2]]],
      [3000, []],
      [4000, [['a', 4]]],
    ]);
  });

  it('the time argument is the batch time', async () => {
    const spec = StateSpec.function((key: string, _v: number | undefined, _s: State<number>, time: number) => [key, time] as Pair);
    const out = await run([[['a', 1]], [], [['b', 1]]], (s) => s.mapWithState(spec));
    expect(out.map((b) => b.data)).toEqual([[['a', 1000]], [], [['b', 3000]]]);
  });

  it('initialState: keys start from it and are in the snapshots before any record', async () => {
    const spec = StateSpec.function(runningSum).initialState([
      ['a', 100],
      ['z', 1],
    ]);
    const snaps: Collected<Pair>[] = [];
    const out = await run([[['a', 1]], [['z', 2]]], (s) => {
      const m = s.mapWithState(spec);
      m.stateSnapshots().foreachRDD(collectInto(snaps));
      return m;
    });
    expect(out.map((b) => b.data)).toEqual([[['a', 101]], [['z', 3]]]);
    expect(snaps).toEqual([
      {
        time: 1000,
        data: [
          ['a', 101],
          ['z', 1],
        ],
      },
      {
        time: 2000,
        data: [
          ['a', 101],
          ['z', 3],
        ],
      },
    ]);
  });

  it('initialState from ctx.parallelize', async () => {
    const out = await run([[['a', 1]]], (s, ctx) =>
      s.mapWithState(
        StateSpec.function(runningSum).initialState(
          ctx.parallelize<Pair>(
            [
              ['a', 5],
              ['b', 6],
            ],
            2,
          ),
        ),
      ).stateSnapshots(),
    );
    expect(sorted(out[0].data)).toEqual([
      ['a', 6],
      ['b', 6],
    ]);
  });

  it('stateSnapshots: every key’s state after each batch, also in batches without records', async () => {
    const spec = StateSpec.function((key: string, value: number | undefined, state: State<number>) => {
      if (value === 0) state.remove();
      else state.update((state.getOption() ?? 0) + value!);
      return undefined;
    });
    const out = await run([[['a', 1], ['b', 2]], [['a', 3]], [], [['b', 0]], [['c', 1]]], (s) => s.mapWithState(spec).stateSnapshots());
    expect(sortedByTime(out)).toEqual([
      {
        time: 1000,
        data: [
          ['a', 1],
          ['b', 2],
        ],
      },
      {
        time: 2000,
        data: [
          ['a', 4],
          ['b', 2],
        ],
      },
      {
        time: 3000,
        data: [
          ['a', 4],
          ['b', 2],
        ],
      },
      { time: 4000, data: [['a', 4]] },
      {
        time: 5000,
        data: [
          ['a', 4],
          ['c', 1],
        ],
      },
    ]);
  });

  it('the mapped values and the snapshots of one mapWithState come from one run of the function per record', async () => {
    let calls = 0;
    const spec = StateSpec.function((k: string, v: number | undefined, st: State<number>) => {
      calls++;
      return runningSum(k, v, st);
    });
    const snaps: Collected<Pair>[] = [];
    const mapped: Collected<Pair>[] = [];
    await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => {
      const m = ctx.queueStream<Pair>([[['a', 1], ['b', 1]], [['a', 1]]]).mapWithState(spec);
      m.stateSnapshots().foreachRDD(collectInto(snaps));
      m.foreachRDD(collectInto(mapped));
      m.count().print();
    });
    expect(calls).toBe(3);
    expect(mapped.map((b) => b.data)).toEqual([
      [
        ['a', 1],
        ['b', 1],
      ],
      [['a', 2]],
    ]);
    expect(snaps.map((b) => b.data)).toEqual([
      [
        ['a', 1],
        ['b', 1],
      ],
      [
        ['a', 2],
        ['b', 1],
      ],
    ]);
  });

  it('numPartitions sets the partitions of the mapped stream and the snapshots', async () => {
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`).join(' ');
    const spec = StateSpec.function(runningSum).numPartitions(3);
    let snapParts: number[] = [];
    const out = await run(words(keys, keys), (s) => {
      const m = s.mapWithState(spec);
      m.stateSnapshots().foreachRDD(async (b) => {
        snapParts = [...snapParts, (await b.collectPartitions()).length];
      });
      return m;
    });
    expect(out.map((b) => b.partitions.length)).toEqual([3, 3]);
    expect(snapParts).toEqual([3, 3]);
    expect(sorted(out[1].data)).toEqual(sorted(keys.split(' ').map((k) => [k, 2])));
  });

  describe('timeouts', () => {
    type Event = { time: number; key: string; value: number | undefined; timingOut: boolean; existed: boolean; state: number | undefined };

    /** A spec that logs every call; counts records per key; on timeout returns ['timeout', key]. */
    function logging(timeout: number | string, updateOnlyFirst = false) {
      const events: Event[] = [];
      const spec = StateSpec.function((key: string, value: number | undefined, state: State<number>, time: number) => {
        events.push({ time, key, value, timingOut: state.isTimingOut(), existed: state.exists(), state: state.getOption() });
        if (state.isTimingOut()) return ['timeout', key] as [string, string];
        if (!updateOnlyFirst || !state.exists()) state.update((state.getOption() ?? 0) + 1);
        return undefined;
      }).timeout(timeout);
      return { events, spec };
    }

    async function runTimeouts(input: Pair[][], n: number, timeout: number | string, updateOnlyFirst = false) {
      const { events, spec } = logging(timeout, updateOnlyFirst);
      const snaps: Collected<Pair>[] = [];
      const out = await run(
        input,
        (s) => {
          const m = s.mapWithState(spec);
          m.stateSnapshots().foreachRDD(collectInto(snaps));
          return m;
        },
        n,
      );
      return { events, snaps, out: out.map((b) => [b.time, sorted(b.data)]) };
    }

    it('a key idle longer than the timeout gets exactly one last call (value undefined, isTimingOut) and disappears', async () => {
      // a: a record at 1000 only; b: a record every batch up to 5000. Timeout 2000 ms:
      // a is idle 2000 ms at 3000 (not longer), 3000 ms at 4000 -> times out at 4000;
      // b's last record is at 5000 -> times out at 8000.
      const input: Pair[][] = [[['a', 1], ['b', 1]], [['b', 1]], [['b', 1]], [['b', 1]], [['b', 1]]];
      const { events, snaps, out } = await runTimeouts(input, 9, 2000);
      const lastCalls = events.filter((e) => e.value === undefined);
      expect(lastCalls).toEqual([
        { time: 4000, key: 'a', value: undefined, timingOut: true, existed: true, state: 1 },
        { time: 8000, key: 'b', value: undefined, timingOut: true, existed: true, state: 5 },
      ]);
      expect(events.filter((e) => e.timingOut)).toEqual(lastCalls);
      expect(out).toEqual([
        [1000, []],
        [2000, []],
        [3000, []],
        [4000, [['timeout', 'a']]],
        [5000, []],
        [6000, []],
        [7000, []],
        [8000, [['timeout', 'b']]],
        [9000, []],
      ]);
      expect(snaps.map((s) => [s.time, s.data.map(([k]) => k)])).toEqual([
        [1000, ['a', 'b']],
        [2000, ['a', 'b']],
        [3000, ['a', 'b']],
        [4000, ['b']],
        [5000, ['b']],
        [6000, ['b']],
        [7000, ['b']],
        [8000, []],
        [9000, []],
      ]);
    });

    it('a key that timed out starts again without state when a record arrives', async () => {
      const input: Pair[][] = [[['a', 1]], [], [], [], [], [['a', 1]]];
      const { events } = await runTimeouts(input, 9, '2s');
      expect(events.map((e) => [e.time, e.value, e.timingOut, e.existed, e.state])).toEqual([
        [1000, 1, false, false, undefined],
        [4000, undefined, true, true, 1],
        [6000, 1, false, false, undefined],
        [9000, undefined, true, true, 1],
      ]);
    });

    it('any record resets the idle clock, even if the function does not call update', async () => {
      // a at 1000 (update) and 3000 (no update): idle from 3000, so it times out at 6000, not 4000.
      const input: Pair[][] = [[['a', 1]], [], [['a', 1]], [], [], [], []];
      const { events, snaps } = await runTimeouts(input, 7, 2000, true);
      expect(events.map((e) => [e.time, e.value, e.timingOut, e.state])).toEqual([
        [1000, 1, false, undefined],
        [3000, 1, false, 1],
        [6000, undefined, true, 1],
      ]);
      expect(snaps.map((s) => [s.time, s.data])).toEqual([
        [1000, [['a', 1]]],
        [2000, [['a', 1]]],
        [3000, [['a', 1]]],
        [4000, [['a', 1]]],
        [5000, [['a', 1]]],
        [6000, []],
        [7000, []],
      ]);
    });

    it('a key removed by the function does not time out later', async () => {
      const events: [number, number | undefined, boolean][] = [];
      const spec = StateSpec.function((_k: string, v: number | undefined, state: State<number>, time: number) => {
        events.push([time, v, state.isTimingOut()]);
        if (v === 0) state.remove();
        else if (!state.isTimingOut()) state.update(v!);
        return undefined;
      }).timeout(1000);
      await run([[['a', 1]], [['a', 0]], [], [], []], (s) => s.mapWithState(spec));
      expect(events).toEqual([
        [1000, 1, false],
        [2000, 0, false],
      ]);
    });

    it('initial-state keys without records time out, idle from the first batch', async () => {
      const { spec, events } = logging(1000);
      await run([[], [], [], []], (s) => s.mapWithState(spec.initialState([['z', 9]])));
      expect(events).toEqual([{ time: 3000, key: 'z', value: undefined, timingOut: true, existed: true, state: 9 }]);
    });

    it('update() while timing out fails the batch with a clear error', async () => {
      const spec = StateSpec.function((_k: string, v: number | undefined, state: State<number>) => {
        state.update((state.getOption() ?? 0) + (v ?? 0));
        return undefined;
      }).timeout(1000);
      const e = await caught(() => run([[['a', 1]]], (s) => s.mapWithState(spec), 4));
      expect(e).toBeInstanceOf(SluiceError);
      expect(e.message).toContain('cannot update the state of a key that is timing out');
    });

    it('remove() while timing out fails the batch with a clear error (as Spark)', async () => {
      const spec = StateSpec.function((_k: string, _v: number | undefined, state: State<number>) => {
        if (state.isTimingOut()) state.remove();
        else state.update(1);
        return undefined;
      }).timeout(1000);
      const e = await caught(() => run([[['a', 1]]], (s) => s.mapWithState(spec), 4));
      expect(e).toBeInstanceOf(SluiceError);
      expect(e.message).toContain('timing out');
    });

    it('without a timeout, idle keys keep their state forever', async () => {
      const { events, spec } = logging(1000);
      const noTimeout = StateSpec.function(spec.fn);
      const snaps: Collected<Pair>[] = [];
      await run(
        [[['a', 1]]],
        (s) => {
          const m = s.mapWithState(noTimeout);
          m.stateSnapshots().foreachRDD(collectInto(snaps));
          return m;
        },
        6,
      );
      expect(events.filter((e) => e.timingOut)).toEqual([]);
      expect(snaps.map((s) => s.data)).toEqual(Array.from({ length: 6 }, () => [['a', 1]]));
    });
  });
});

describe('state checks when the job is built', () => {
  const build = (f: (s: DStream<Pair>) => unknown) => (ctx: StreamingContext) => {
    const r = f(ctx.queueStream<Pair>([[['a', 1]]]));
    return r as DStream<unknown> | undefined;
  };
  const fails = (f: (s: DStream<Pair>) => unknown) => caught(() => runBatches({ batchInterval: interval, batches: 1 }, build(f)));

  for (const bad of ['0s', -5, 0, 1.5, 'never']) {
    it(`a StateSpec timeout of ${JSON.stringify(bad)} is refused`, async () => {
      const e = await caught(() => StateSpec.function(() => undefined).timeout(bad));
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.message).toContain('StateSpec.timeout');
    });
  }

  for (const bad of [0, -1, 1.5]) {
    it(`numPartitions ${bad} is refused by StateSpec and updateStateByKey`, async () => {
      const a = await caught(() => StateSpec.function(() => undefined).numPartitions(bad));
      expect(a).toBeInstanceOf(JobDefinitionError);
      expect(a.message).toContain(`StateSpec.numPartitions: numPartitions must be a whole number >= 1, got ${bad}`);
      const b = await fails((s) => s.updateStateByKey(count, { numPartitions: bad }));
      expect(b).toBeInstanceOf(JobDefinitionError);
      expect(b.message).toContain(`updateStateByKey: numPartitions must be a whole number >= 1, got ${bad}`);
    });
  }

  it('mapWithState without a StateSpec is refused', async () => {
    const e = await fails((s) => s.mapWithState(((k: string, v: number) => [k, v]) as never));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('mapWithState: expected a StateSpec');
  });

  it('StateSpec.function without a function is refused', async () => {
    const e = await caught(() => StateSpec.function('nope' as never));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('StateSpec.function');
  });

  it('updateStateByKey without a function, or with initial state that is not pairs, is refused', async () => {
    const a = await fails((s) => s.updateStateByKey(undefined as never));
    expect(a).toBeInstanceOf(JobDefinitionError);
    expect(a.message).toContain('updateStateByKey');
    const b = await fails((s) => s.updateStateByKey(count, { initial: [['a', 1, 2]] as never }));
    expect(b).toBeInstanceOf(JobDefinitionError);
    expect(b.message).toContain('initial state must be [key, state] pairs');
    const c = await fails((s) => s.updateStateByKey(count, { initial: 'a=1' as never }));
    expect(c).toBeInstanceOf(JobDefinitionError);
  });

  it('checkpoint() on a stateless stream is refused', async () => {
    for (const f of [(s: DStream<Pair>) => s.map((p) => p).checkpoint(1000), (s: DStream<Pair>) => s.reduceByKey((a, b) => a + b).checkpoint(1000), (s: DStream<Pair>) => s.checkpoint(1000)]) {
      const e = await fails(f);
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.message).toContain('checkpoint()');
      expect(e.message).toContain('keeps no state');
    }
  });

  it('a checkpoint interval that is not a multiple of the batch interval is refused', async () => {
    const ops: ((s: DStream<Pair>) => unknown)[] = [
      (s) => s.updateStateByKey(count).checkpoint(1500),
      (s) => s.mapWithState(StateSpec.function(() => undefined)).checkpoint('2500ms'),
      (s) => s.reduceByKeyAndWindow((a, b) => a + b, (a, b) => a - b, 2000).checkpoint(500),
      (s) => s.window(2000).checkpoint(1001),
    ];
    for (const f of ops) {
      const e = await fails(f);
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.message).toContain('not a multiple of the batch interval (1000 ms)');
    }
    const bad = await fails((s) => s.updateStateByKey(count).checkpoint(0));
    expect(bad).toBeInstanceOf(JobDefinitionError);
    const job = await caught(() => defineJob({ name: 'j', batchInterval: 1000, checkpointInterval: 1500 }, () => {}));
    expect(job).toBeInstanceOf(JobDefinitionError);
    expect(job.message).toContain('checkpointInterval');
  });

  it('checkpoint() is accepted on the stream of every window and state operator', async () => {
    const add = (a: number, b: number) => a + b;
    const sub = (a: number, b: number) => a - b;
    const ops: [string, (s: DStream<Pair>) => DStream<unknown>][] = [
      ['window', (s) => s.window(2000)],
      ['countByWindow', (s) => s.countByWindow(2000)],
      ['reduceByWindow', (s) => s.map(([, n]) => n).reduceByWindow(add, 2000)],
      ['reduceByWindow with inverse', (s) => s.map(([, n]) => n).reduceByWindow(add, sub, 2000)],
      ['reduceByKeyAndWindow', (s) => s.reduceByKeyAndWindow(add, 2000)],
      ['reduceByKeyAndWindow with inverse', (s) => s.reduceByKeyAndWindow(add, sub, 2000)],
      ['countByValueAndWindow', (s) => s.countByValueAndWindow(2000)],
      ['groupByKeyAndWindow', (s) => s.groupByKeyAndWindow(2000)],
      ['updateStateByKey', (s) => s.updateStateByKey(count)],
      ['mapWithState', (s) => s.mapWithState(StateSpec.function(() => undefined))],
    ];
    const refused: string[] = [];
    for (const [name, op] of ops) {
      try {
        await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => op(ctx.queueStream<Pair>([[['a', 1]]])).checkpoint('2s'));
      } catch (e) {
        refused.push(`${name}: ${(e as Error).message}`);
      }
    }
    expect(refused).toEqual([]);
  });
});

describe('checkpoint interval and rebuilding state from blobs', () => {
  const N = 10;
  // Keys come and go; some records remove state (value 0), some keys go idle and time out.
  const input: Pair[][] = [
    [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ],
    [
      ['a', 1],
      ['d', 1],
    ],
    [['b', 0]],
    [],
    [
      ['c', 2],
      ['e', 5],
    ],
    [
      ['a', 0],
      ['b', 4],
    ],
    [],
    [
      ['d', 3],
      ['e', 0],
    ],
    [['f', 1]],
    [
      ['a', 2],
      ['f', 1],
    ],
  ];
  const add = (a: number, b: number) => a + b;
  const sub = (a: number, b: number) => a - b;

  interface Seen {
    update: Collected<Pair>[];
    mapped: Collected<unknown>[];
    snaps: Collected<Pair>[];
    windowed: Collected<Pair>[];
    slid: Collected<Pair>[];
  }
  const fresh = (): Seen => ({ update: [], mapped: [], snaps: [], windowed: [], slid: [] });

  /** The job: updateStateByKey, mapWithState (with timeout and snapshots) and inverse windows, checkpointed every `every` ms (or the default). */
  const job = (seen: Seen, every?: number) => (ctx: StreamingContext) => {
    const s = ctx.queueStream(input, { numPartitions: 2 });
    const cp = <X extends DStream<unknown>>(d: X): X => (every === undefined ? d : d.checkpoint(every));
    cp(
      s.updateStateByKey<string, number, number>((vs, st) => {
        if (vs.includes(0)) return undefined;
        const n = (st ?? 0) + vs.reduce(add, 0);
        return vs.length === 0 && n > 4 ? undefined : n;
      }, { numPartitions: 3 }),
    ).foreachRDD(collectInto(seen.update));
    const spec = StateSpec.function((key: string, v: number | undefined, state: State<number>, time: number) => {
      if (state.isTimingOut()) return ['timeout', key, state.get(), time];
      if (v === 0) {
        state.remove();
        return ['removed', key, time];
      }
      state.update((state.getOption() ?? 0) + v!);
      return undefined;
    })
      .timeout(2000)
      .numPartitions(2);
    const m = cp(s.mapWithState(spec));
    m.foreachRDD(collectInto(seen.mapped));
    m.stateSnapshots().foreachRDD(collectInto(seen.snaps));
    cp(s.reduceByKeyAndWindow(add, sub, 3000, 1000, { numPartitions: 2 })).foreachRDD(collectInto(seen.windowed));
    cp(s.reduceByKeyAndWindow(add, sub, 4000, 2000, { filter: ([, n]) => n !== 0 })).foreachRDD(collectInto(seen.slid));
  };

  async function uninterrupted(every?: number): Promise<Seen> {
    const seen = fresh();
    await runBatches({ batchInterval: interval, batches: N }, job(seen, every));
    return seen;
  }

  it('the reference run makes sense (timeouts, removals, windows)', async () => {
    const ref = await uninterrupted();
    expect(ref.update.map((b) => b.time)).toEqual(Array.from({ length: N }, (_, i) => (i + 1) * 1000));
    expect(ref.slid.map((b) => b.time)).toEqual([2000, 4000, 6000, 8000, 10000]);
    const mapped = ref.mapped.flatMap((b) => b.data);
    expect(sorted(mapped)).toEqual(
      sorted([
        ['removed', 'b', 3000],
        ['timeout', 'c', 3, 4000],
        ['timeout', 'a', 2, 5000],
        ['timeout', 'd', 1, 5000],
        ['removed', 'a', 6000],
        ['removed', 'e', 8000],
        ['timeout', 'c', 2, 8000],
        ['timeout', 'b', 4, 9000],
      ]),
    );
    expect(ref.snaps[N - 1].data).toEqual([
      ['a', 2],
      ['d', 3],
      ['f', 2],
    ]);
  });

  it('checkpoint(3000) or checkpoint(1000) gives the same results as the default interval', async () => {
    const ref = await uninterrupted();
    expect(await uninterrupted(3000)).toEqual(ref);
    expect(await uninterrupted(1000)).toEqual(ref);
  });

  it('with checkpoint(3000) the state between full checkpoints is kept as deltas', async () => {
    const blobs = new MemoryBlobStore();
    await runBatches({ batchInterval: interval, batches: 5, blobs }, job(fresh(), 3000));
    const names = await blobs.list('state/');
    expect(names.some((k) => /\/full-0*3000$/.test(k))).toBe(true);
    expect(names.some((k) => /\/delta-0*5000$/.test(k))).toBe(true);
  });

  it('the job option checkpointInterval: 3000 gives the same results, uninterrupted and resumed from blobs', async () => {
    const ref = await uninterrupted();
    const whole = fresh();
    const one = testCoordinator({ batchInterval: interval, checkpointInterval: 3000 }, job(whole));
    await one.run(N);
    await one.coordinator.stop();
    expect(whole).toEqual(ref);
    const names = await one.blobs.list('state/');
    expect(names.some((k) => /\/full-0*9000$/.test(k))).toBe(true);
    expect(names.some((k) => /\/delta-0*10000$/.test(k))).toBe(true);

    const blobs = new MemoryBlobStore();
    const meta = new MemoryMetaStore();
    const first = fresh();
    const second = fresh();
    const a = testCoordinator({ batchInterval: interval, checkpointInterval: 3000 }, job(first), { blobs, meta });
    await a.run(5);
    await a.coordinator.stop();
    const b = testCoordinator({ batchInterval: interval, checkpointInterval: 3000 }, job(second), { blobs, meta });
    await b.run(N - 5);
    await b.coordinator.stop();
    for (const k of Object.keys(ref) as (keyof Seen)[]) expect([...first[k], ...second[k]]).toEqual(ref[k]);
  });

  for (const every of [3000, undefined]) {
    for (const split of [1, 2, 3, 4, 5, 7, 9]) {
      it(`checkpoint ${every ?? 'default'}: stopping after ${split} batches and resuming (state rebuilt from blobs) gives the same results`, async () => {
        const ref = await uninterrupted(every);
        const blobs = new MemoryBlobStore();
        const meta = new MemoryMetaStore();
        const first = fresh();
        const second = fresh();
        await runBatches({ batchInterval: interval, batches: split, blobs, meta }, job(first, every));
        await runBatches({ batchInterval: interval, batches: N - split, blobs, meta }, job(second, every));
        const joined: Seen = {
          update: [...first.update, ...second.update],
          mapped: [...first.mapped, ...second.mapped],
          snaps: [...first.snaps, ...second.snaps],
          windowed: [...first.windowed, ...second.windowed],
          slid: [...first.slid, ...second.slid],
        };
        expect(joined).toEqual(ref);
      });
    }
  }
});
