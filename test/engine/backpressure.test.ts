import { describe, expect, it } from 'vitest';
import type { BatchInfo, Receiver } from 'sluice';
import { JobDefinitionError } from '../../lib/core/errors.ts';
import { defineJob } from '../../lib/api/job.ts';
import { RateEstimator } from '../../lib/engine/rateEstimator.ts';
import type { ManualClock } from '../../lib/node/clock.ts';
import { testCoordinator } from '../helpers/engine.ts';

// Backpressure as Spark Streaming defines it (PIDRateEstimator; spark.streaming.backpressure.*):
// the rate a PID controller estimates from each completed batch bounds what the next batches take.

describe('RateEstimator (Spark’s PID rate estimator, default gains 1 / 0.2 / 0, minimum 100 records/s)', () => {
  it('the first batch only calibrates; with no delay the rate then follows the processing rate', () => {
    const pid = new RateEstimator(1000);
    expect(pid.update(1000, 2000, 1000, 0)).toBeUndefined(); // calibrates: 2,000 records/s
    // Processed at 2,000/s again: no error, no delay → 2,000.
    expect(pid.update(2000, 2000, 1000, 0)).toBe(2000);
    // Processed at 1,000/s: error 2,000 − 1,000, the proportional term takes it all → 1,000.
    expect(pid.update(3000, 500, 500, 0)).toBe(1000);
  });

  it('a scheduling delay lowers the rate by integral × delay × processing rate ÷ batch interval, never below the minimum', () => {
    const pid = new RateEstimator(1000);
    pid.update(1000, 1000, 1000, 0); // 1,000 records/s
    // 1,000/s with 2 s of scheduling delay: 1,000 − 0 − 0.2 × (2000 × 1000 ÷ 1000) = 600.
    expect(pid.update(2000, 1000, 1000, 2000)).toBeCloseTo(600, 9);
    // 10 s of delay would go below zero: held at the minimum.
    expect(pid.update(3000, 600, 1000, 10_000)).toBe(100);
    const floor = new RateEstimator(1000, undefined, 250);
    floor.update(1000, 1000, 1000, 0);
    expect(floor.update(2000, 1000, 1000, 60_000)).toBe(250);
  });

  it('the derivative term reacts to the change of the error', () => {
    const pid = new RateEstimator(1000, { proportional: 0, integral: 0, derivative: 0.5 });
    pid.update(1000, 1000, 1000, 0); // rate 1,000, error 0
    // error = 1000 − 500 = 500 over 1 s: 1000 − 0.5 × 500 = 750.
    expect(pid.update(2000, 500, 1000, 0)).toBe(750);
  });

  it('ignores empty batches, batches that took no time and batches older than the last', () => {
    const pid = new RateEstimator(1000);
    expect(pid.update(1000, 0, 50, 0)).toBeUndefined();
    expect(pid.update(1000, 100, 0, 0)).toBeUndefined();
    pid.update(5000, 1000, 1000, 0);
    expect(pid.update(4000, 1000, 1000, 0)).toBeUndefined();
    expect(pid.update(6000, 1000, 1000, 0)).toBe(1000);
  });

  it('refuses a batch interval or a minimum rate that is not positive', () => {
    expect(() => new RateEstimator(0)).toThrow(/batch interval must be > 0/);
    expect(() => new RateEstimator(1000, undefined, 0)).toThrow(/minimum rate must be > 0/);
  });
});

describe('backpressure in the coordinator', () => {
  /**
   * A receiver the test feeds, and a job whose every record costs 1 ms of (manual-clock) time:
   * 1,000 records/s at a 1 s batch interval.
   */
  function slowJob(backpressure: boolean, stores: Pick<Parameters<typeof testCoordinator>[2] & object, 'blobs' | 'meta'> = {}) {
    let store: (r: readonly number[]) => void = () => undefined;
    const receiver: Receiver<number> = {
      start(s) {
        store = s;
      },
      stop() {},
    };
    const sizes: number[] = [];
    const seen: number[] = [];
    const delays: number[] = [];
    const at: { clock?: ManualClock } = {};
    const t = testCoordinator({ batchInterval: '1s', backpressure }, (ctx) => {
      ctx.addListener({ onBatchCompleted: (b: BatchInfo) => (sizes.push(b.numRecords), delays.push(b.schedulingDelay!)) });
      ctx
        .receiverStream(receiver)
        .map((x) => {
          at.clock!.advance(1);
          return x;
        })
        .foreachRDD(async (b) => {
          seen.push(...((await b.collect()) as number[]));
        });
    }, stores);
    at.clock = t.clock;
    let next = 0;
    const feed = (n: number) => store(Array.from({ length: n }, () => next++));
    /** Runs batches back to back as a late job does: the clock never goes back to a batch's time. */
    const run = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await t.coordinator.start();
        t.clock.set(Math.max(t.clock.now(), t.coordinator.nextBatchTime));
        await t.coordinator.runNextBatch();
      }
    };
    return { run, feed, sizes, seen, delays, total: () => next, blobs: t.blobs, meta: t.meta, coordinator: t.coordinator, clock: t.clock };
  }

  async function burst(backpressure: boolean) {
    const job = slowJob(backpressure);
    await job.run(1); // starts the receiver
    job.feed(800);
    await job.run(2); // 800, then nothing: the estimator calibrates on the first
    job.feed(800);
    await job.run(1);
    job.feed(20_000); // a backlog, as after a pause
    await job.run(30);
    return job;
  }

  it('without it, a backlog goes into one batch, however long that batch takes', async () => {
    const job = await burst(false);
    expect(job.sizes).toContain(20_000);
    expect(job.seen).toEqual(Array.from({ length: job.total() }, (_, i) => i));
  });

  it('with it, the backlog is taken at about the processing rate per batch, in order, nothing lost or doubled', async () => {
    const job = await burst(true);
    const after = job.sizes.slice(4);
    // Processing runs at 1,000 records/s with 1 s batches: no batch after the backlog takes more.
    expect(Math.max(...after)).toBeLessThanOrEqual(1000);
    expect(Math.min(...after.filter((n) => n > 0))).toBeGreaterThanOrEqual(100);
    expect(job.seen).toEqual(Array.from({ length: job.total() }, (_, i) => i));
    // …so no batch waits behind a 20 s one: the scheduling delay stays far below the backlog's 20 s.
    expect(Math.max(...job.delays)).toBeLessThan(5000);
  });

  it('the estimate is kept in the checkpoint: the next coordinator (the next minute’s, on AWS) limits its very first batch', async () => {
    const first = slowJob(true);
    await first.run(1);
    first.feed(800);
    await first.run(2);
    first.feed(800);
    await first.run(2); // calibrated, then a rate: 1,000 records/s
    await first.coordinator.stop();
    const saved = (await first.meta.get<{ rates: Record<string, { rate: number }> }>('checkpoint'))!.value.rates;
    expect(Object.values(saved).map((r) => r.rate)).toEqual([1000]);

    const next = slowJob(true, { blobs: first.blobs, meta: first.meta });
    next.clock.set(first.clock.now());
    await next.coordinator.start();
    next.feed(5000);
    await next.run(1);
    expect(next.sizes).toEqual([1000]);
  });

  it('is a boolean job option', () => {
    expect(defineJob({ name: 'j', batchInterval: '1s' }, () => undefined).options.backpressure).toBe(false);
    expect(defineJob({ name: 'j', batchInterval: '1s', backpressure: true }, () => undefined).options.backpressure).toBe(true);
    expect(() => defineJob({ name: 'j', batchInterval: '1s', backpressure: 'yes' as unknown as boolean }, () => undefined)).toThrow(JobDefinitionError);
    expect(() => defineJob({ name: 'j', batchInterval: '1s', backpressure: 'yes' as unknown as boolean }, () => undefined)).toThrow(/backpressure must be true or false/);
  });
});
