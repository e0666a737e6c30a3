import { describe, expect, it } from 'vitest';
import type { Batch } from 'sluice';
import { runBatches } from 'sluice/testing';
import { canon, sorted } from '../helpers/semantics.ts';
import { mulberry32, randInt, rawWindow, slideTimes, sumByKey } from '../helpers/windows.ts';

// Property test of the window operators against a model of Spark's definition: at every multiple
// of the slide, the window holds the batches in (t - window, t]. Random cases come from a seeded
// PRNG; a failure prints the seed and the case. To re-run one case:
//   SLUICE_WINDOW_SEED=<seed> npx vitest run test/semantics/windowProperties.test.ts

const CASES = 50;
const BASE_SEED = 0x51_1ce;
const only = process.env.SLUICE_WINDOW_SEED;
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: CASES }, (_, i) => BASE_SEED + i);

type Pair = [string, number];

interface Case {
  seed: number;
  interval: number;
  window: number;
  slide: number;
  inputPartitions: number;
  numPartitions: number;
  batches: Pair[][];
}

function makeCase(seed: number): Case {
  const rand = mulberry32(seed);
  const interval = rand() < 0.7 ? 1000 : 250;
  // About one case in three has a window shorter than its slide: the batches between windows are in none.
  const gaps = rand() < 0.3;
  const slide = randInt(rand, gaps ? 2 : 1, gaps ? 4 : 3) * interval;
  const window = gaps ? randInt(rand, 1, slide / interval - 1) * interval : slide + randInt(rand, 0, 4) * interval;
  const n = randInt(rand, 3, 12);
  const alphabet = 'abcdefgh'.slice(0, randInt(rand, 1, 8));
  const batches: Pair[][] = [];
  for (let i = 0; i < n; i++) {
    // About one batch in four is empty.
    const size = rand() < 0.25 ? 0 : randInt(rand, 1, 8);
    const b: Pair[] = [];
    for (let j = 0; j < size; j++) b.push([alphabet[randInt(rand, 0, alphabet.length - 1)], randInt(rand, 1, 5)]);
    batches.push(b);
  }
  return { seed, interval, window, slide, inputPartitions: randInt(rand, 1, 3), numPartitions: randInt(rand, 1, 4), batches };
}

interface Seen<T> {
  time: number;
  data: T[];
  partitions: number;
}

function collector<T>(into: Seen<T>[]): (batch: Batch<T>, time: number) => Promise<void> {
  return async (batch, time) => {
    const parts = await batch.collectPartitions();
    into.push({ time, data: sorted(parts.flat()), partitions: parts.length });
  };
}

/** Runs one case; returns what went wrong (empty when the properties hold). */
async function check(c: Case): Promise<string[]> {
  const add = (a: number, b: number) => a + b;
  const sub = (a: number, b: number) => a - b;
  const inv: Seen<Pair>[] = [];
  const plain: Seen<Pair>[] = [];
  const counts: Seen<number>[] = [];
  const windows: Seen<Pair>[] = [];
  const values: Seen<[Pair, number]>[] = [];
  await runBatches({ batchInterval: c.interval, batches: c.batches.length, maxTaskAttempts: 1 }, (ctx) => {
    const s = ctx.queueStream(c.batches, { numPartitions: c.inputPartitions });
    s.reduceByKeyAndWindow(add, sub, c.window, c.slide, { numPartitions: c.numPartitions, filter: ([, n]) => n !== 0 }).foreachRDD(collector(inv));
    s.reduceByKeyAndWindow(add, c.window, c.slide, { numPartitions: c.numPartitions }).foreachRDD(collector(plain));
    s.countByWindow(c.window, c.slide).foreachRDD(collector(counts));
    s.window(c.window, c.slide).foreachRDD(collector(windows));
    s.countByValueAndWindow(c.window, c.slide).foreachRDD(collector(values));
  });

  const problems: string[] = [];
  const same = (what: string, got: unknown, want: unknown) => {
    if (canon(got) !== canon(want)) problems.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  const times = slideTimes(c.batches.length, c.interval, c.slide);
  same('reduceByKeyAndWindow (inverse) output times', inv.map((b) => b.time), times);
  same('reduceByKeyAndWindow output times', plain.map((b) => b.time), times);
  same('countByWindow output times', counts.map((b) => b.time), times);
  same('window output times', windows.map((b) => b.time), times);
  same('countByValueAndWindow output times', values.map((b) => b.time), times);
  const at = <T>(seen: Seen<T>[], t: number) => seen.find((b) => b.time === t);
  for (const t of times) {
    const raw = rawWindow(c.batches, c.interval, t, c.window);
    // (1) the incremental reduce with a filter equals reducing the window again
    same(`t=${t}: reduceByKeyAndWindow(+, -, filter) vs reduceByKeyAndWindow(+)`, at(inv, t)?.data, at(plain, t)?.data);
    same(`t=${t}: reduceByKeyAndWindow(+, -, filter) vs the model`, at(inv, t)?.data, sumByKey(raw));
    same(`t=${t}: reduceByKeyAndWindow(+) vs the model`, at(plain, t)?.data, sumByKey(raw));
    same(`t=${t}: partitions of reduceByKeyAndWindow(+, -)`, at(inv, t)?.partitions, c.numPartitions);
    same(`t=${t}: partitions of reduceByKeyAndWindow(+)`, at(plain, t)?.partitions, c.numPartitions);
    // (2) countByWindow recounts the raw input of the window
    same(`t=${t}: countByWindow`, at(counts, t)?.data, [raw.length]);
    // (3) window holds exactly the raw batches of the window
    same(`t=${t}: window`, at(windows, t)?.data, sorted(raw));
    // (4) countByValueAndWindow (incremental, dropping zero counts) counts each distinct record of the window
    same(`t=${t}: countByValueAndWindow`, at(values, t)?.data, sumByKey(raw.map((p) => [p, 1] as [Pair, number])));
  }
  return problems;
}

describe('window operators against the model of (t - window, t]', () => {
  it(`${seeds.length} random cases: inverse reduce = plain reduce, countByWindow, countByValueAndWindow and window recount the raw input`, async () => {
    const failures: string[] = [];
    for (const seed of seeds) {
      const c = makeCase(seed);
      let problems: string[];
      try {
        problems = await check(c);
      } catch (e) {
        problems = [`the job failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`];
      }
      if (problems.length) {
        failures.push(`seed ${seed} (SLUICE_WINDOW_SEED=${seed}), case ${JSON.stringify(c)}:\n  ${problems.slice(0, 5).join('\n  ')}`);
      }
    }
    expect(failures, `${failures.length} of ${seeds.length} cases failed:\n${failures.join('\n')}`).toEqual([]);
  });

  it('the case generator covers what it should (empty batches, long slides, windows not a multiple of the slide, windows shorter than the slide)', () => {
    const cases = seeds.length > 1 ? seeds.map(makeCase) : Array.from({ length: CASES }, (_, i) => makeCase(BASE_SEED + i));
    expect(cases.some((c) => c.batches.some((b) => b.length === 0))).toBe(true);
    expect(cases.some((c) => c.slide > c.interval)).toBe(true);
    expect(cases.some((c) => c.window === c.slide)).toBe(true);
    expect(cases.some((c) => c.window % c.slide !== 0)).toBe(true);
    expect(cases.some((c) => c.interval !== 1000)).toBe(true);
    expect(new Set(cases.map((c) => c.numPartitions)).size).toBeGreaterThan(2);
    expect(cases.some((c) => c.window < c.slide && c.window > c.interval)).toBe(true);
    expect(cases.some((c) => c.window < c.slide && c.window === c.interval)).toBe(true);
  });
});
