import { describe, expect, it } from 'vitest';
import type { DStream, StreamingContext } from 'sluice';
import { runBatches } from 'sluice/testing';

// README and docs/design.md §4.7: with an inverse function "each slide costs the same whatever
// the window length" (Spark's ReducedWindowedDStream): a slide adds the batches that entered and
// subtracts the ones that left, instead of reducing every batch in the window again. The cost is
// counted here as calls of the user's reduce and inverse functions, on the manual clock of
// runBatches, so the count is exact and the same on every machine.

const interval = 1000;
const batches = 14;
/** The same input every batch: eight keys, one value each per partition, so the counts settle. */
const steady = Array.from({ length: batches }, () => Array.from({ length: 16 }, (_, i) => `k${i % 8}`));

/** Calls of the reduce and the inverse function. */
interface Calls {
  reduce: number;
  inverse: number;
}

/**
 * Runs `windowed` over the steady input and returns the calls made per slide once the window is
 * full and batches leave it: the calls between the end of one slide and the end of the next.
 */
async function callsPerSlide(slideMs: number, fullFrom: number, windowed: (pairs: DStream<[string, number]>, fns: { add: (a: number, b: number) => number; sub: (a: number, b: number) => number }) => DStream<unknown>): Promise<Calls[]> {
  const calls: Calls = { reduce: 0, inverse: 0 };
  const add = (a: number, b: number) => (calls.reduce++, a + b);
  const sub = (a: number, b: number) => (calls.inverse++, a - b);
  const atSlide = new Map<number, Calls>();
  await runBatches({ batchInterval: interval, batches }, (ctx: StreamingContext) => {
    ctx.addListener({ onBatchCompleted: (b) => (b.batchTime % slideMs === 0 ? atSlide.set(b.batchTime, { ...calls }) : undefined) });
    return windowed(ctx.queueStream(steady, { numPartitions: 2 }).map((k) => [k, 1] as [string, number]), { add, sub });
  });
  const perSlide: Calls[] = [];
  for (let t = fullFrom; t <= batches * interval; t += slideMs) {
    const before = atSlide.get(t - slideMs)!;
    const after = atSlide.get(t)!;
    perSlide.push({ reduce: after.reduce - before.reduce, inverse: after.inverse - before.inverse });
  }
  return perSlide;
}

// Each case: a slide, a short and a long window (multiples of the slide), and the first slide at
// which the long window is full and has batches leaving it.
const shapes = [
  { slide: 1000, short: 2000, long: 8000 },
  { slide: 2000, short: 2000, long: 8000 },
].map((s) => ({ ...s, fullFrom: s.long + 2 * s.slide }));

describe.each(shapes)('the cost of a slide ($slide ms) for a window of $short ms and of $long ms', ({ slide, short, long, fullFrom }) => {
  it('reduceByKeyAndWindow with an inverse: the same reduce and inverse calls per slide, whatever the window length', async () => {
    const run = (w: number) => callsPerSlide(slide, fullFrom, (pairs, { add, sub }) => pairs.reduceByKeyAndWindow(add, sub, w, slide));
    const [shortWindow, longWindow] = [await run(short), await run(long)];
    expect(shortWindow.length).toBeGreaterThanOrEqual(2);
    expect(longWindow).toEqual(shortWindow);
    // The inverse is what removes the leaving batches: it is called at every slide.
    for (const c of shortWindow) expect(c.inverse).toBeGreaterThan(0);
  });

  it('reduceByWindow with an inverse: the same reduce and inverse calls per slide, whatever the window length', async () => {
    const run = (w: number) => callsPerSlide(slide, fullFrom, (pairs, { add, sub }) => pairs.map(([, n]) => n).reduceByWindow(add, sub, w, slide));
    const [shortWindow, longWindow] = [await run(short), await run(long)];
    expect(longWindow).toEqual(shortWindow);
    for (const c of shortWindow) expect(c.inverse).toBeGreaterThan(0);
  });

  it('without an inverse (the counting is real): every slide reduces the whole window again, so a longer window costs more per slide', async () => {
    const byKey = (w: number) => callsPerSlide(slide, fullFrom, (pairs, { add }) => pairs.reduceByKeyAndWindow(add, w, slide));
    const whole = (w: number) => callsPerSlide(slide, fullFrom, (pairs, { add }) => pairs.map(([, n]) => n).reduceByWindow(add, w, slide));
    for (const run of [byKey, whole]) {
      const [shortWindow, longWindow] = [await run(short), await run(long)];
      for (let i = 0; i < shortWindow.length; i++) {
        expect(longWindow[i].reduce).toBeGreaterThan(shortWindow[i].reduce);
        expect(longWindow[i].inverse).toBe(0);
      }
    }
  });
});
