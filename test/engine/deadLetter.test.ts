import { describe, expect, it } from 'vitest';
import type { Batch, BatchInfo, DStream, State, StreamingContext } from 'sluice';
import { RecordError, StateSpec } from 'sluice';
import { runBatches } from 'sluice/testing';
import { buildGraph, defineJob } from '../../lib/api/job.ts';
import { PROTOCOL_STEPS, type ProtocolStep } from '../../lib/engine/coordinator.ts';
import type { TaskResult } from '../../lib/engine/protocol.ts';
import { memoryLog } from '../../lib/local/log.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { localSources } from '../../lib/local/sourceFactory.ts';
import type { BlobStore, InputSplit } from '../../lib/ports/index.ts';
import { interceptInvoker, testCoordinator } from '../helpers/engine.ts';
import { caught, sorted } from '../helpers/semantics.ts';

const input = [['3', '4', 'x', '5'], ['oops', '1']];

/** The job's first user function: parses a number, and throws on anything else. */
const parse = (s: string): number => {
  const n = Number(s);
  if (Number.isNaN(n)) throw new Error(`not a number: ${s}`);
  return n;
};
/** The job's second: a 1 becomes a stray non-pair, which `reduceByKey` then throws on. */
const toPair = (n: number) => (n === 1 ? ('lonely' as unknown as [string, number]) : (['sum', n] as [string, number]));

/** Parses numbers; a bad one throws in `map`, and a stray non-pair reaches `reduceByKey`. */
function job(infos: BatchInfo[]) {
  return (ctx: StreamingContext) => {
    ctx.addListener({ onBatchCompleted: (b) => infos.push(b) });
    return ctx.queueStream(input, { numPartitions: 2 }).map(parse).map(toPair).reduceByKey((a, b) => a + b);
  };
}

describe("onRecordError: 'dead-letter'", () => {
  it('sets bad records aside with their source position and error, and the batch goes on', async () => {
    // Prepare
    const blobs = new MemoryBlobStore();
    const infos: BatchInfo[] = [];
    const log = memoryLog();
    // Act
    const out = await runBatches({ batchInterval: 1000, batches: 2, onRecordError: 'dead-letter', blobs, log }, job(infos));
    // Assess: the good records are counted, the bad ones are not.
    expect(out.map((b) => b.data)).toEqual([[['sum', 12]], []]);
    expect(infos.map((b) => b.numDeadLetters)).toEqual([1, 2]);
    expect(log.warnings).toContain('batch 2000: 2 record(s) set aside under dead-letters/000000000002000/ in the state store');
    const letters = await lettersIn(blobs);
    // The contract: what was set aside, why, by which node, in which batch, and from which source record.
    // `source.split` is the source's own description of where the record was read: it is checked
    // below by reading it again, not by its fields.
    expect(letters).toEqual([
      { batchTime: 1000, node: 'map-1', error: 'not a number: x', source: { node: 'queue-1', partition: 1, offset: 0, split: expect.anything() }, record: 'x' },
      { batchTime: 2000, node: 'map-1', error: 'not a number: oops', source: { node: 'queue-1', partition: 0, offset: 0, split: expect.anything() }, record: 'oops' },
      {
        batchTime: 2000,
        node: 'reduceByKey-1',
        error: expect.stringMatching(/reduceByKey-1 expects \[key, value\] pairs, got the string "lonely"/),
        source: { node: 'queue-1', partition: 1, offset: 0, split: expect.anything() },
        record: 'lonely',
      },
    ]);
  });

  it("a letter's source position leads back to its record: the batch's partition and offset, and its split read again", async () => {
    // Prepare: the same job, its stream as the job sees it (each batch's partitions), and the source as a worker builds it.
    const blobs = new MemoryBlobStore();
    await runBatches({ batchInterval: 1000, batches: input.length, onRecordError: 'dead-letter', blobs }, job([]));
    const seen = await runBatches({ batchInterval: 1000, batches: input.length }, (ctx) => ctx.queueStream(input, { numPartitions: 2 }));
    const definition = defineJob({ name: 'test', batchInterval: 1000 }, (ctx) => ctx.queueStream(input, { numPartitions: 2 }).print());
    const source = localSources()(buildGraph(definition).source('queue-1'), { blobs, job: 'test' });
    // What each node was given, from the source record it came from (or what that threw, should it be the wrong record).
    const outcome = (f: () => unknown) => {
      try {
        return f();
      } catch (e) {
        return `threw: ${(e as Error).message}`;
      }
    };
    const givenTo: Record<string, (raw: string) => unknown> = { 'map-1': (raw) => raw, 'reduceByKey-1': (raw) => toPair(parse(raw)) };

    // Act
    const letters = (await lettersIn(blobs)) as SourceLetter[];
    const traced: { letter: string; inBatch: unknown; reRead: unknown; given: unknown }[] = [];
    for (const l of letters) {
      const inBatch = seen.find((b) => b.time === l.batchTime)!.partitions[l.source.partition][l.source.offset];
      const reRead = await source.read(l.source.split).then((r) => r.records[l.source.offset] as string, (e: Error) => `threw: ${e.message}`);
      traced.push({ letter: `${l.node} at ${l.batchTime}`, inBatch, reRead, given: outcome(() => givenTo[l.node](reRead)) });
    }

    // Assess: one letter per record that is not a number or is a 1; each names the place of the
    // record it was made from: its split read again holds, at its offset, what the batch's
    // partition held there, and that is the record the node was given.
    expect(letters).toHaveLength(input.flat().filter((s) => Number.isNaN(Number(s)) || Number(s) === 1).length);
    expect(letters.map((l) => l.source.node)).toEqual(letters.map(() => 'queue-1'));
    expect(traced.map(({ letter, reRead }) => ({ letter, reRead }))).toEqual(traced.map(({ letter, inBatch }) => ({ letter, reRead: inBatch })));
    expect(traced.map(({ letter, given }) => ({ letter, given }))).toEqual(letters.map((l) => ({ letter: `${l.node} at ${l.batchTime}`, given: l.record })));
  });

  it("by default ('fail') the same input fails the batch with a RecordError", async () => {
    const err = await runBatches({ batchInterval: 1000, batches: 2, maxTaskAttempts: 1 }, job([])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecordError);
    expect((err as Error).message).toContain('map-1 threw on the string "x": not a number: x');
  });
});

// ---------------------------------------------------------------------------------------------
// Functions that concern a key and its values (reduce side, state, windows), a whole partition,
// a sort key, or the batch's plan (transform) follow the same rule as map-side functions.

type Letter = Record<string, unknown>;
/** A dead letter of a record read from a source. */
type SourceLetter = { batchTime: number; node: string; record: unknown; source: { node: string; partition: number; offset: number; split: InputSplit } };

/** Every dead letter in the state store, in key order. */
async function lettersIn(blobs: BlobStore): Promise<Letter[]> {
  const letters: Letter[] = [];
  for (const k of await blobs.list('dead-letters/')) {
    const text = new TextDecoder().decode(await blobs.get(k));
    for (const line of text.trim().split('\n')) letters.push(JSON.parse(line) as Letter);
  }
  return letters;
}

/** Runs `build` with `onRecordError: 'dead-letter'`: each batch's records, its dead letter count, and the letters. */
async function setAside<T>(batches: number, build: (ctx: StreamingContext) => DStream<T>) {
  const blobs = new MemoryBlobStore();
  const infos: BatchInfo[] = [];
  const out = await runBatches({ batchInterval: 1000, batches, onRecordError: 'dead-letter', blobs, maxTaskAttempts: 1 }, (ctx) => {
    ctx.addListener({ onBatchCompleted: (b) => infos.push(b) });
    return build(ctx);
  });
  return { data: out.map((b) => b.data), counts: infos.map((b) => b.numDeadLetters ?? 0), letters: await lettersIn(blobs) };
}

/** Runs `build` with the default `onRecordError: 'fail'` and returns what it failed with. */
function failsWith<T>(batches: number, build: (ctx: StreamingContext) => DStream<T>): Promise<Error> {
  return caught(() => runBatches({ batchInterval: 1000, batches, maxTaskAttempts: 1 }, build));
}

/** `'k:n'` as the pair `['k', n]`. */
const pair = (s: string): [string, number] => {
  const [k, n] = s.split(':');
  return [k, Number(n)];
};

const noNegatives = (x: number, y: number) => {
  if (x < 0 || y < 0) throw new Error('negative');
  return x + y;
};

describe("onRecordError: 'dead-letter' for a key whose reduce function throws", () => {
  const counts = (numPartitions: number) => (ctx: StreamingContext) => ctx.queueStream([['a:1', 'a:-1', 'b:2']], { numPartitions }).map(pair).reduceByKey(noNegatives);

  it.each([
    ['map side (both values of a in one partition)', 1],
    ['reduce side (one value per partition)', 3],
  ])('sets the key aside with its values and the error, and commits the other keys: %s', async (_where, numPartitions) => {
    const { data, counts: n, letters } = await setAside(1, counts(numPartitions));
    expect(data).toEqual([[['b', 2]]]);
    expect(n).toEqual([1]);
    expect(letters).toEqual([{ batchTime: 1000, node: 'reduceByKey-1', error: 'negative', source: null, record: null, key: 'a', records: [1, -1] }]);
  });

  it("by default ('fail') the batch fails with a RecordError naming the operator and the key", async () => {
    for (const numPartitions of [1, 3]) {
      const e = await failsWith(1, counts(numPartitions));
      expect(e).toBeInstanceOf(RecordError);
      expect(e.message).toContain('reduceByKey-1 threw on key "a": negative');
    }
  });

  it('a key one map task set aside is left out by the reducer too, with what the other map tasks sent for it', async () => {
    // Partition 0 holds a:1 and a:-1 (its merge throws), partition 1 holds a:5 and b:2.
    const { data, counts: n, letters } = await setAside(1, (ctx) => ctx.queueStream([['a:1', 'a:-1', 'a:5', 'b:2']], { numPartitions: 2 }).map(pair).reduceByKey(noNegatives));
    expect(data).toEqual([[['b', 2]]]);
    expect(n).toEqual([2]);
    expect(letters).toEqual([
      { batchTime: 1000, node: 'reduceByKey-1', error: 'negative', source: null, record: null, key: 'a', records: [1, -1] },
      {
        batchTime: 1000,
        node: 'reduceByKey-1',
        error: 'reduceByKey-1: set aside with key "a", whose merge threw in another map task',
        source: null,
        record: null,
        key: 'a',
        records: [5],
      },
    ]);
  });
});

describe("onRecordError: 'dead-letter' in updateStateByKey", () => {
  const input = [['a:1', 'bad:1'], ['a:1', 'bad:-1'], ['a:1', 'bad:2']];
  const running = (ctx: StreamingContext) =>
    ctx
      .queueStream(input)
      .map(pair)
      .updateStateByKey((values: number[], state: number | undefined) => {
        if (values.some((v) => v < 0)) throw new Error('negative');
        return (state ?? 0) + values.reduce((x, y) => x + y, 0);
      });

  it("keeps the poison key's state as it was, emits nothing for it, and updates it again in later batches", async () => {
    const { data, counts: n, letters } = await setAside(3, running);
    expect(data).toEqual([
      [
        ['a', 1],
        ['bad', 1],
      ],
      [['a', 2]],
      [
        ['a', 3],
        ['bad', 3],
      ],
    ]);
    expect(n).toEqual([0, 1, 0]);
    expect(letters).toEqual([
      {
        batchTime: 2000,
        node: 'updateStateByKey-1',
        error: 'negative',
        source: null,
        record: null,
        key: 'bad',
        records: [[-1], 1],
        note: 'its state is kept as it was before this batch',
      },
    ]);
  });

  it("by default ('fail') the batch fails with a RecordError naming the operator and the key", async () => {
    const e = await failsWith(3, running);
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('updateStateByKey-1 threw on key "bad": negative');
    expect((e as RecordError).batchTime).toBe(2000);
  });
});

describe("onRecordError: 'dead-letter' in mapWithState", () => {
  const sums = (ctx: StreamingContext) =>
    ctx
      .queueStream([['a:1', 'a:-1', 'a:2', 'b:5'], ['a:1']])
      .map(pair)
      .mapWithState(
        StateSpec.function((key: string, value: number | undefined, state: State<number>) => {
          if (value! < 0) throw new Error('negative');
          const sum = (state.getOption() ?? 0) + value!;
          state.update(sum);
          return [key, sum] as [string, number];
        }),
      );

  it("sets the record's call aside with the key, the value and the state before it; the key's state goes on without it", async () => {
    const { data, counts: n, letters } = await setAside(2, sums);
    expect(data.map((d) => sorted(d))).toEqual([
      [
        ['a', 1],
        ['a', 3],
        ['b', 5],
      ],
      [['a', 4]],
    ]);
    expect(n).toEqual([1, 0]);
    expect(letters).toEqual([
      {
        batchTime: 1000,
        node: 'mapWithState-1',
        error: 'negative',
        source: null,
        record: null,
        key: 'a',
        records: [-1, 1],
        note: 'this call is skipped: its state is as it was before it',
      },
    ]);
  });

  it('a key whose timing-out call throws is still removed, and the call is set aside', async () => {
    const { data, letters } = await setAside(4, (ctx) =>
      ctx
        .queueStream([['gone:7', 'kept:1'], ['kept:1'], ['kept:1'], ['gone:1']])
        .map(pair)
        .mapWithState(
          StateSpec.function((key: string, value: number | undefined, state: State<number>) => {
            if (state.isTimingOut()) throw new Error(`cannot say goodbye to ${key}`);
            state.update((state.getOption() ?? 0) + value!);
            return [key, state.get()] as [string, number];
          }).timeout('1s'),
        ),
    );
    // gone times out at 3000; at 4000 it starts again from no state.
    expect(data.map((d) => sorted(d))).toEqual([
      [
        ['gone', 7],
        ['kept', 1],
      ],
      [['kept', 2]],
      [['kept', 3]],
      [['gone', 1]],
    ]);
    expect(letters).toEqual([
      {
        batchTime: 3000,
        node: 'mapWithState-1',
        error: 'cannot say goodbye to gone',
        source: null,
        record: null,
        key: 'gone',
        records: [null, 7],
        note: 'the key timed out: its state is removed',
      },
    ]);
  });

  it("by default ('fail') the batch fails with a RecordError naming the operator and the key", async () => {
    const e = await failsWith(2, sums);
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('mapWithState-1 threw on key "a": negative');
  });
});

describe("onRecordError: 'dead-letter' in reduceByKeyAndWindow", () => {
  // One value per key and batch, so the map side never merges: every reduce call is the window's.
  const input = [['a:1', 'b:1'], ['a:-1', 'b:1'], ['a:1', 'b:1'], ['a:1', 'b:1'], ['a:1', 'b:1']];
  // With or without an inverse, a is out of the windows that hold its -1, and back after.
  const windows = [
    [
      ['a', 1],
      ['b', 1],
    ],
    [['b', 2]],
    [['b', 2]],
    [
      ['a', 2],
      ['b', 2],
    ],
    [
      ['a', 2],
      ['b', 2],
    ],
  ];

  it('without an inverse: the key is left out of each window its reduce throws in, and comes back after', async () => {
    const { data, counts: n, letters } = await setAside(5, (ctx) => ctx.queueStream(input).map(pair).reduceByKeyAndWindow(noNegatives, '2s', '1s'));
    expect(data.map((d) => sorted(d))).toEqual(windows);
    expect(n).toEqual([0, 1, 1, 0, 0]);
    expect(letters).toEqual([
      { batchTime: 2000, node: 'reduceByKeyAndWindow-1', error: 'negative', source: null, record: null, key: 'a', records: [1, -1] },
      { batchTime: 3000, node: 'reduceByKeyAndWindow-1', error: 'negative', source: null, record: null, key: 'a', records: [-1, 1] },
    ]);
  });

  it("with an inverse: the key's kept value is removed and the line says so; once the batches it covered have left the window, the value is right again", async () => {
    const { data, counts: n, letters } = await setAside(5, (ctx) =>
      ctx
        .queueStream(input)
        .map(pair)
        .reduceByKeyAndWindow(noNegatives, (x, y) => x - y, '2s', '1s'),
    );
    // The window of a at 4000 is a:1 (3000) + a:1 (4000): the -1 of 2000 is neither added nor subtracted.
    expect(data.map((d) => sorted(d))).toEqual(windows);
    expect(n).toEqual([0, 1, 0, 0, 0]);
    expect(letters).toEqual([
      {
        batchTime: 2000,
        node: 'reduceByKeyAndWindow-1',
        error: 'negative',
        source: null,
        record: null,
        key: 'a',
        records: [1, -1],
        note: expect.stringContaining('its window value is removed from the state') as unknown,
      },
    ]);
  });

  it("by default ('fail') the batch fails with a RecordError naming the operator and the key, with or without an inverse", async () => {
    const plain = await failsWith(5, (ctx) => ctx.queueStream(input).map(pair).reduceByKeyAndWindow(noNegatives, '2s', '1s'));
    const inverse = await failsWith(5, (ctx) =>
      ctx
        .queueStream(input)
        .map(pair)
        .reduceByKeyAndWindow(noNegatives, (x, y) => x - y, '2s', '1s'),
    );
    for (const e of [plain, inverse]) {
      expect(e).toBeInstanceOf(RecordError);
      expect(e.message).toContain('reduceByKeyAndWindow-1 threw on key "a": negative');
    }
  });
});

describe("onRecordError: 'dead-letter' after a join", () => {
  const ratios = (ctx: StreamingContext) => {
    const amounts = ctx.queueStream([['x:1', 'y:6', 'z:2']]).map(pair);
    const divisors = ctx.queueStream([['x:0', 'y:3', 'z:1']]).map(pair);
    return amounts.join(divisors).mapValues(([v, w]) => {
      if (w === 0) throw new Error('division by zero');
      return v / w;
    });
  };

  it('sets the joined record aside and keeps the other keys', async () => {
    const { data, counts: n, letters } = await setAside(1, ratios);
    expect(data.map((d) => sorted(d))).toEqual([
      [
        ['y', 2],
        ['z', 2],
      ],
    ]);
    expect(n).toEqual([1]);
    expect(letters).toEqual([{ batchTime: 1000, node: 'mapValues-1', error: 'division by zero', source: null, record: ['x', [1, 0]] }]);
  });

  it("by default ('fail') the batch fails with a RecordError naming the operator and the key", async () => {
    const e = await failsWith(1, ratios);
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('mapValues-1 threw on the pair with key "x": division by zero');
  });
});

describe("onRecordError: 'dead-letter' for a whole partition and a sort key", () => {
  const tens = (ctx: StreamingContext) =>
    ctx.queueStream([[1, 2, 3, 4]], { numPartitions: 2 }).mapPartitions((records) => {
      if (records.includes(3)) throw new Error('three');
      return records.map((x) => x * 10);
    });

  it('mapPartitions: the partition it throws on is set aside, the others go on', async () => {
    const { data, counts: n, letters } = await setAside(1, tens);
    expect(data).toEqual([[10, 20]]);
    expect(n).toEqual([1]);
    expect(letters).toEqual([{ batchTime: 1000, node: 'mapPartitions-1', error: 'mapPartitions-1 threw on partition 1 (2 records): three', source: null, record: [3, 4] }]);
    const e = await failsWith(1, tens);
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('mapPartitions-1 threw on partition 1 (2 records): three');
  });

  const byLength = (ctx: StreamingContext) =>
    ctx.queueStream([['ccc', 'bad', 'a', 'bb']], { numPartitions: 2 }).transform((b) =>
      b.sortBy((w) => {
        if (w === 'bad') throw new Error('no sort key');
        return w.length;
      }),
    );

  it('sortBy: the record whose key function throws is set aside, the others are sorted', async () => {
    const { data, counts: n, letters } = await setAside(1, byLength);
    expect(data).toEqual([['a', 'bb', 'ccc']]);
    expect(n).toEqual([1]);
    expect(letters).toEqual([{ batchTime: 1000, node: 'sortBy', error: 'no sort key', source: null, record: 'bad' }]);
    const e = await failsWith(1, byLength);
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('sortBy threw on the string "bad": no sort key');
  });
});

describe("onRecordError: 'dead-letter' for transform functions", () => {
  const tenfold = (ctx: StreamingContext) =>
    ctx.queueStream([[1, 2], [3], [4]]).transform((b, time) => {
      if (time === 2000) throw new Error('no plan at 2000');
      if (time === 3000) return 42 as unknown as Batch<number>;
      return b.map((x) => x * 10);
    });

  it('a transform that throws or returns no batch gives an empty batch and one dead letter, written once', async () => {
    const blobs = new MemoryBlobStore();
    const infos: BatchInfo[] = [];
    const out = await runBatches({ batchInterval: 1000, batches: 3, onRecordError: 'dead-letter', blobs, parallelism: 2 }, (ctx) => {
      ctx.addListener({ onBatchCompleted: (b) => infos.push(b) });
      return tenfold(ctx);
    });
    expect(out.map((b) => b.data)).toEqual([[10, 20], [], []]);
    expect(infos.map((b) => b.numDeadLetters ?? 0)).toEqual([0, 1, 1]);
    expect(await blobs.list('dead-letters/')).toEqual(['dead-letters/000000000002000/plan-p0.jsonl', 'dead-letters/000000000003000/plan-p0.jsonl']);
    expect(await lettersIn(blobs)).toEqual([
      { batchTime: 2000, node: 'transform-1', error: 'no plan at 2000', source: null, record: null },
      { batchTime: 3000, node: 'transform-1', error: 'transform-1: a transform function must return a batch (or an array), got the number 42', source: null, record: null },
    ]);
  });

  it("by default ('fail') the batch fails with a RecordError naming the node", async () => {
    const e = await failsWith(3, tenfold);
    expect(e).toBeInstanceOf(RecordError);
    expect(e.message).toContain('transform-1: the transform function threw: no plan at 2000');
  });
});

// ---------------------------------------------------------------------------------------------
// Dead letters travel in task results and the coordinator writes the accepted attempt's, under
// names every attempt shares: however often a task or a batch runs, each letter lands once.

describe('dead letters when a task runs more than once or the coordinator crashes', () => {
  // Map-side letters (records that are not pairs) and key letters (a negative value makes the
  // reduce throw) in each of three batches.
  const input = [
    ['a:1', 'b:x', 'a:2', 'c:3'],
    ['a:-1', 'a:4', 'b:1', 'zz'],
    ['c:1', 'c:-2', 'q:y', 'b:2'],
  ];
  const lastBatch = input.length * 1000;
  const strictPair = (s: string): [string, number] => {
    const [k, n] = s.split(':');
    if (n === undefined || Number.isNaN(Number(n))) throw new Error(`not a pair: ${s}`);
    return [k, Number(n)];
  };

  /** What a run left: its saved output, each batch's dead letter count, and the letters in the state store (in a canonical order). */
  interface Outcome {
    saved: Record<string, string>;
    counts: Map<number, number>;
    letters: Letter[];
  }
  /** Where a run's listener and sink write (shared by a coordinator and its successor). */
  function newRun() {
    const out = new MemoryBlobStore();
    const counts = new Map<number, number>();
    const sinks = (location: string) => ({ store: out, key: location });
    const saved = async () => Object.fromEntries(await Promise.all((await out.list('')).map(async (k) => [k, new TextDecoder().decode(await out.get(k))])));
    return { counts, sinks, saved };
  }

  function build(counts: Map<number, number>) {
    return (ctx: StreamingContext) => {
      ctx.addListener({ onBatchCompleted: (b) => counts.set(b.batchTime, b.numDeadLetters ?? 0) });
      ctx.queueStream(input, { numPartitions: 2 }).map(strictPair).reduceByKey(noNegatives, { numPartitions: 2 }).saveAsTextFiles('counts');
    };
  }
  const options = { batchInterval: 1000, onRecordError: 'dead-letter' as const };

  /** Runs the job over all its batches, with `overrides` for the engine harness. */
  async function runWith(overrides: Parameters<typeof testCoordinator>[2]): Promise<Outcome> {
    const { counts, sinks, saved } = newRun();
    const t = testCoordinator(options, build(counts), { sinks, ...overrides });
    await t.run(input.length);
    return { saved: await saved(), counts, letters: sorted(await lettersIn(t.blobs)) };
  }

  let clean: Promise<Outcome> | undefined;
  /** The run without faults, computed once: the model every faulty run must match. */
  const cleanRun = () => (clean ??= runWith({}));

  it('the run without faults sets letters aside in every batch, and its counts are the letters it wrote', async () => {
    const { saved, counts, letters } = await cleanRun();
    expect(Object.keys(saved).filter((k) => k.endsWith('/_SUCCESS'))).toEqual(['counts-1000/_SUCCESS', 'counts-2000/_SUCCESS', 'counts-3000/_SUCCESS']);
    expect([...counts.keys()]).toEqual([1000, 2000, 3000]);
    for (const [t, n] of counts) {
      expect(n, `batch ${t}`).toBeGreaterThan(0);
      expect(letters.filter((l) => l.batchTime === t), `batch ${t}`).toHaveLength(n);
    }
  });

  it('a task whose first attempt computed its letters and then failed is retried: the same letters and counts as a run without faults, not doubled', async () => {
    // Prepare: every first attempt runs to the end, then its answer is lost.
    let lostWithLetters = 0;
    const overrides: Parameters<typeof testCoordinator>[2] = {
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          const result = (await go()) as TaskResult;
          if (task.attempt > 0) return result;
          if (result.deadLetters?.length) lostWithLetters++;
          throw new Error('the answer was lost after the task ran');
        }),
    };

    // Act
    const retried = await runWith(overrides);

    // Assess
    expect(lostWithLetters).toBeGreaterThan(0);
    expect(retried).toEqual(await cleanRun());
  });

  it('every task run twice at once (a duplicated invocation): the same letters and counts as a run without faults, not doubled', async () => {
    // Prepare: both runs compute and answer; the coordinator gets the second answer.
    let duplicatedWithLetters = 0;
    const overrides: Parameters<typeof testCoordinator>[2] = {
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          const [first, second] = (await Promise.all([go(), go()])) as TaskResult[];
          if (first.deadLetters?.length) duplicatedWithLetters++;
          return second;
        }),
    };

    // Act
    const duplicated = await runWith(overrides);

    // Assess
    expect(duplicatedWithLetters).toBeGreaterThan(0);
    expect(duplicated).toEqual(await cleanRun());
  });

  class Crash extends Error {}

  it.each(PROTOCOL_STEPS.map((s) => [s]))(
    'a coordinator that crashes after step %s of a batch with letters, and a successor that resumes on the same stores: the same letters and counts as a run without faults',
    async (step: ProtocolStep) => {
      // Prepare: the first coordinator dies after the step, in the middle batch.
      const { counts, sinks, saved } = newRun();
      const crashAt = 2000;
      let crashed = false;
      const first = testCoordinator(options, build(counts), {
        sinks,
        onStep: (s, t) => {
          if (!crashed && s === step && t === crashAt) {
            crashed = true;
            throw new Crash(`crash after ${s} of ${t}`);
          }
        },
      });

      // Act: it runs until it dies; a successor takes over its stores (the first is known to be gone) and runs to the end.
      await expect(first.run(input.length)).rejects.toBeInstanceOf(Crash);
      await first.coordinator.stop();
      const successor = testCoordinator(options, build(counts), { sinks, blobs: first.blobs, meta: first.meta, owner: 'successor', ownerGone: () => true });
      await successor.coordinator.start();
      while (successor.coordinator.nextBatchTime <= lastBatch) await successor.run(1);

      // Assess: the output and the letters are the clean run's. Each batch reported its count
      // once, with the clean run's value; only a batch that died after its commit was reported by no one.
      const reference = await cleanRun();
      expect(crashed).toBe(true);
      expect(await saved()).toEqual(reference.saved);
      expect(sorted(await lettersIn(first.blobs))).toEqual(reference.letters);
      const committedBeforeTheCrash = step === 'commit' || step === 'cleanup';
      const expectedCounts = new Map([...reference.counts].filter(([t]) => !(committedBeforeTheCrash && t === crashAt)));
      expect(counts).toEqual(expectedCounts);
    },
  );
});
