import { describe, expect, it } from 'vitest';
import { type DStream, type State, StateSpec, type StreamingContext } from 'sluice';
import { FencedError } from '../../lib/core/errors.ts';
import { keys } from '../../lib/engine/protocol.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import type { JsonValue } from '../../lib/ports/index.ts';
import { testCoordinator } from '../helpers/engine.ts';

// Quiet batches (lib/engine/coordinator.ts): a batch cut empty, with every stateful node at rest,
// runs in the coordinator without a lineage record or a commit. Each job below runs the same
// input twice — once with quiet batches, once with every batch recorded and committed, as before
// they existed — and every batch's output must be the same, through idle stretches, a clean
// stop and a crash in the middle of one.

/** A meta store that remembers which keys were written, and how often the checkpoint was. */
class CountingMetaStore extends MemoryMetaStore {
  readonly written: string[] = [];
  override put(key: string, value: JsonValue, options: { expectedVersion: number; epoch: number }) {
    this.written.push(key);
    return super.put(key, value, options);
  }
}

/** Records put before each batch (1-based); every other batch gets none. */
const SCRIPT: Record<number, string[]> = {
  3: ['a', 'b', 'a'],
  4: ['b', 'c'],
  5: ['a'],
  17: ['c', 'd', 'c'],
  24: ['a'],
};
const BATCHES = 32;

type Output = Map<number, unknown[]>;

/**
 * Runs the script through `build` with three coordinators in turn over the same stores: the first
 * stops cleanly after batch 10 (it releases the lease), the second crashes after batch 20 (it
 * does not), the third goes on to the end. Returns each batch's output and the meta store.
 */
async function runScript(quietBatches: boolean, build: (words: DStream<string>) => DStream<unknown>) {
  const queue: string[][] = [];
  const out: Output = new Map();
  const meta = new CountingMetaStore();
  const blobs = new MemoryBlobStore();
  const job = (ctx: StreamingContext) => build(ctx.queueStream(queue, { numPartitions: 2 })).capture((time, partitions) => out.set(time, partitions.flat()));
  const coordinator = () => testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000, defaultParallelism: 2 }, job, { meta, blobs, quietBatches });
  let c = coordinator();
  for (let i = 1; i <= BATCHES; i++) {
    if (i === 11) {
      await c.coordinator.stop();
      await c.coordinator.releaseLease();
      c = coordinator();
    }
    if (i === 21) {
      // A crash: no stop, no release. The next coordinator takes the lease over (same owner).
      c = coordinator();
    }
    // After the crash, the quiet batches since the last commit run again first.
    await c.coordinator.start();
    while (c.coordinator.lastCompleted < (i - 1) * 1000) await c.run(1);
    if (SCRIPT[i]) queue.push(SCRIPT[i]);
    await c.run(1);
    expect(c.coordinator.lastCompleted).toBe(i * 1000);
  }
  await c.coordinator.stop();
  return { out, meta, records: new Set(meta.written.filter((k) => k.startsWith('batch/'))).size };
}

const pairs = (words: DStream<string>) => words.map((w) => [w, 1] as [string, number]);
const add = (a: number, b: number) => a + b;

/** Each job, how it is built, and how many of the 32 batches are quiet: at least, at most. */
const JOBS: [string, (words: DStream<string>) => DStream<unknown>, number, number?][] = [
  ['countByValue (no state)', (w) => w.countByValue(), 20],
  ['reduceByKeyAndWindow without an inverse (3 s window, 1 s slide)', (w) => pairs(w).reduceByKeyAndWindow(add, '3s', '1s'), 15],
  ['reduceByKeyAndWindow with an inverse and a filter (4 s window, 2 s slide)', (w) => pairs(w).reduceByKeyAndWindow(add, (a, b) => a - b, '4s', '2s', { filter: ([, n]) => n > 0 }), 15],
  // Spark outputs (key, 0) at every slide: never at rest once a key came (nor before, as the
  // first batches are within a window of the job's start).
  ['reduceByKeyAndWindow with an inverse, no filter: keys stay at zero and are output', (w) => pairs(w).reduceByKeyAndWindow(add, (a, b) => a - b, '3s', '1s'), 0, 0],
  ['window (2 s, every 2 s), counted', (w) => w.window('2s', '2s').count(), 15],
  [
    'mapWithState with a 2 s timeout: the timeout fires on time after an idle stretch',
    (w) =>
      pairs(w).mapWithState(
        StateSpec.function((key: string, one: number | undefined, state: State<number>) => {
          if (state.isTimingOut()) return `${key} timed out at ${state.get()}`;
          state.update((state.getOption() ?? 0) + (one ?? 0));
          return `${key}=${state.get()}`;
        }).timeout('2s'),
      ),
    15,
  ],
  [
    'updateStateByKey that forgets a key after 3 batches without it (its function sees every key every batch)',
    (w) =>
      pairs(w).updateStateByKey((ones: number[], s: { n: number; idle: number } | undefined) => {
        const idle = ones.length ? 0 : (s?.idle ?? 0) + 1;
        return idle >= 3 ? undefined : { n: (s?.n ?? 0) + ones.length, idle };
      }),
    15,
  ],
];

describe('quiet batches give the output of every batch run in full', () => {
  it.each(JOBS)('%s', async (_name, build, minQuiet, maxQuiet = BATCHES) => {
    // Act
    const quiet = await runScript(true, build);
    const full = await runScript(false, build);

    // Assess: the same output at every batch time (every slide of a window's), quiet or not.
    expect(full.out.size).toBeGreaterThanOrEqual(BATCHES / 2);
    expect(Object.fromEntries(quiet.out)).toEqual(Object.fromEntries(full.out));
    // Every batch run in full writes its lineage record; quiet ones write none.
    expect(full.records).toBe(BATCHES);
    expect(BATCHES - quiet.records).toBeGreaterThanOrEqual(minQuiet);
    expect(BATCHES - quiet.records).toBeLessThanOrEqual(maxQuiet);
  });

  it('an idle stretch writes nothing but the lease: a clean stop records its quiet batches with the release, and the next coordinator keeps the checkpoint', async () => {
    // Prepare: one batch with data, then idle ones.
    const queue: string[][] = [['x']];
    const meta = new CountingMetaStore();
    const blobs = new MemoryBlobStore();
    const job = (ctx: StreamingContext) => void ctx.queueStream(queue).countByValue().saveAsTextFiles('out/quiet');
    const sinks = () => ({ store: new MemoryBlobStore(), key: 'out' });
    const first = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000 }, job, { meta, blobs, sinks });
    await first.run(1);

    // Act: ten idle batches, a clean stop; a second coordinator runs ten more and stops cleanly.
    const before = meta.written.length;
    await first.run(10);
    const duringIdle = meta.written.slice(before);
    await first.coordinator.stop();
    await first.coordinator.releaseLease();
    const second = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000 }, job, { meta, blobs, sinks });
    second.clock.set(11_000);
    const beforeSecond = meta.written.length;
    await second.run(10);
    await second.coordinator.stop();
    await second.coordinator.releaseLease();
    const secondMinute = meta.written.slice(beforeSecond);

    // Assess: idle batches wrote nothing; the second coordinator wrote the lease twice (take, release) and resumed after the quiet run.
    expect(duringIdle).toEqual([]);
    expect(secondMinute).toEqual([keys.lease, keys.lease]);
    expect(second.coordinator.lastCompleted).toBe(21_000);
    expect((await meta.get<{ lastCompleted: number }>(keys.checkpoint))?.value.lastCompleted).toBe(1000);
    expect((await meta.get(keys.lease))?.value).toMatchObject({ owner: '', quiet: { through: 21_000 } });
  });

  it('a minute of quiet batches under a lease taken for the minute (as the AWS handler takes it) renews nothing: the minute is the lease taken and released', async () => {
    // Prepare
    const meta = new CountingMetaStore();
    const job = (ctx: StreamingContext) => void ctx.queueStream<string>([]).countByValue().print();
    const c = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000 }, job, { meta, leaseMs: 75_000 });
    c.clock.set(1000);

    // Act: the first batch moves the queue's position from none (it is committed); 64 quiet ones of 1 s follow, then the release.
    await c.run(1);
    const before = meta.written.length;
    await c.run(64);
    await c.coordinator.stop();
    await c.coordinator.releaseLease();

    // Assess: no renewal, no commit: the release is the only write after the first batch.
    expect(meta.written.slice(before)).toEqual([keys.lease]);
  });

  it('a superseded coordinator whose quiet run met records commits nothing: its commit of the quiet batches is fenced', async () => {
    // Prepare: A runs idle batches, then stalls; its lease runs out and B takes over and runs on.
    const queue: string[][] = [];
    const meta = new CountingMetaStore();
    const blobs = new MemoryBlobStore();
    const out = new MemoryBlobStore();
    const job = (ctx: StreamingContext) => void ctx.queueStream(queue).countByValue().saveAsTextFiles('out/fenced');
    const sinks = () => ({ store: out, key: 'out' });
    const a = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000 }, job, { meta, blobs, sinks, owner: 'A', leaseMs: 5000 });
    await a.run(5);
    const b = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000 }, job, { meta, blobs, sinks, owner: 'B', leaseMs: 5000 });
    b.clock.set(20_000);
    await b.coordinator.start();
    queue.push(['late']);
    await b.run(1);

    // Act: A wakes up with quiet batches in memory and finds a record in its next batch.
    queue.push(['later']);
    a.clock.set(a.coordinator.nextBatchTime);
    const late = a.coordinator.runNextBatch();

    // Assess: A is fenced before it writes a record or an output; B's batch stands alone.
    await expect(late).rejects.toThrow(FencedError);
    expect(meta.written.filter((k) => k.startsWith('batch/000000000006000'))).toEqual([]);
    expect((await out.list('out')).some((k) => k.includes('6000'))).toBe(false);
    // (A's first batch moved the queue's position from none to 0, so it was committed.)
    expect(b.coordinator.lastCompleted).toBe(2000);
  });
});

describe("idle mode (the job's idleAfter): a job idle that long sleeps between looks for input", () => {
  /** A job over `queue` with idleAfter 5 s at 1 s batches; `window` adds a 10 s window. */
  function idleJob(queue: string[][], out: Output, meta: CountingMetaStore, blobs: MemoryBlobStore, window = false) {
    const job = (ctx: StreamingContext) => {
      const words = ctx.queueStream(queue);
      const counted = window ? pairs(words).reduceByKeyAndWindow(add, '10s', '1s') : words.countByValue();
      counted.capture((time, partitions) => out.set(time, partitions.flat()));
    };
    return testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000, idleAfter: '5s' }, job, { meta, blobs });
  }

  it.each([
    // Input last at 2000: idle once 5 s of quiet batches have passed (7000) ...
    ['a stateless job sleeps once idleAfter has passed without input', false, 7000],
    // ... or, with a 10 s window, once batch 12000 no longer holds batch 2000 in its window.
    ['a job with a 10 s window sleeps only once its last input has left the window', true, 12_000],
  ])('%s; its next look writes nothing, and the look that finds input runs the batch due then', async (_name, window, idleAt) => {
    // Prepare: input in batch 2 (batch 1 moves the queue's position from none: it is committed).
    const queue: string[][] = [];
    const out: Output = new Map();
    const meta = new CountingMetaStore();
    const blobs = new MemoryBlobStore();
    const first = idleJob(queue, out, meta, blobs, window);
    await first.run(1);
    queue.push(['a', 'b', 'a']);
    await first.run(1);

    // Act 1: batches until the job is idle, then the lease released.
    while (!first.coordinator.idle) await first.run(1);
    const idleFrom = first.coordinator.lastCompleted;
    await first.coordinator.stop();
    await first.coordinator.releaseLease();

    // Act 2: a look a minute later, without input.
    const look = idleJob(queue, out, meta, blobs, window);
    look.clock.set(idleFrom + 60_000);
    const writesBefore = meta.written.length;
    const slept = await look.coordinator.idleWithoutInput();

    // Act 3: input comes; the look after it finds it and runs.
    queue.push(['c']);
    const woken = idleJob(queue, out, meta, blobs, window);
    woken.clock.set(idleFrom + 120_500);
    const found = await woken.coordinator.idleWithoutInput();
    await woken.coordinator.start();
    const due = woken.coordinator.nextBatchTime;
    await woken.run(1);

    // Assess: idle exactly when nothing was pending any more; the look wrote nothing; the batch due at the wake-up ran with the input.
    expect(idleFrom).toBe(idleAt);
    expect(slept).toBe(idleAt);
    expect(meta.written.slice(writesBefore, writesBefore + 1)).toEqual([keys.lease]);
    expect(meta.written.length).toBeGreaterThan(writesBefore);
    expect(found).toBeUndefined();
    expect(due).toBe(idleFrom + 120_000);
    expect(out.get(due)).toEqual([['c', 1]]);
    // Every record counted once: a, b, a in batch 2000, c in the batch due at the wake-up.
    expect(out.get(2000)).toEqual(expect.arrayContaining([['a', 2], ['b', 1]]));
  });

  it('refuses an idleAfter shorter than the batch interval, saying what to give', () => {
    expect(() => testCoordinator({ batchInterval: 1000, idleAfter: '500ms' }, (ctx) => void ctx.queueStream([[1]]).print())).toThrow(
      "job engine-test: idleAfter (500 ms) must be at least the batch interval (1000 ms), e.g. '10m'",
    );
  });
});
