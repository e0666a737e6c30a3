import { describe, expect, it } from 'vitest';
import { BatchHistory, type BatchSummary, historyCache, historyKey, readHistory } from '../../lib/engine/batchHistory.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import type { BlobStore } from '../../lib/ports/index.ts';
import { interceptInvoker, testCoordinator } from '../helpers/engine.ts';

// The batches' history behind the Streaming UI (lib/engine/batchHistory.ts): what the coordinator
// records of each batch, when it writes it, and how overlapping writers read back.

const summary = (time: number, status: BatchSummary['status'] = 'completed', end = time + 10): BatchSummary => ({
  time,
  status,
  records: 1,
  processingStartTime: time,
  processingEndTime: end,
  schedulingDelay: 0,
  processingDelay: end - time,
  totalDelay: end - time,
  deadLetters: 0,
  runs: 'workers',
  recovered: false,
  stages: [],
  input: {},
  outputs: [],
});

describe('the batches history', () => {
  it('records each batch: its timing as the listener hears it, every stage split at shuffles, each task attempt with records in and out, the sealed input', async () => {
    let failedOnce = false;
    const heard: { batchTime: number; totalDelay?: number; numRecords: number }[] = [];
    const { coordinator, run } = testCoordinator(
      { batchInterval: 1000 },
      (ctx) => {
        ctx.addListener({ onBatchCompleted: (b) => heard.push(b) });
        ctx
          .queueStream([['a', 'b', 'a'], ['c']], { oneAtATime: true, numPartitions: 2 })
          .map((w) => [w, 1] as [string, number])
          .reduceByKey((x, y) => x + y, { numPartitions: 3 })
          .print();
      },
      {
        wrapInvoker: (inner) =>
          interceptInvoker(inner, async (task, go) => {
            // The first attempt of the first reduce task fails: the history shows both attempts.
            if (task.stage.kind === 'result' && task.partition === 0 && !failedOnce) {
              failedOnce = true;
              return { ok: false, error: { name: 'Error', message: 'flaky worker' }, retryable: true };
            }
            return go();
          }),
      },
    );
    await run(2);
    const [first, second] = coordinator.history.recent();
    expect([first.time, second.time]).toEqual(heard.map((b) => b.batchTime));
    expect([first.totalDelay, second.totalDelay]).toEqual(heard.map((b) => b.totalDelay));
    expect([first.records, second.records]).toEqual([3, 1]);
    expect(first.status).toBe('completed');

    const [map, result] = first.stages;
    expect(map.kind).toBe('map');
    expect(map.nodes.at(-1)).toMatch(/^shuffle for reduceByKey-/);
    expect(map.tasks.map((t) => t.partition).sort()).toEqual([0, 1]);
    expect(map.tasks.reduce((n, t) => n + (t.recordsIn ?? 0), 0)).toBe(3);
    expect(result.kind).toBe('result');
    expect(result.reads).toEqual([map.key]);
    expect(result.partitions).toBe(3);
    const p0 = result.tasks.filter((t) => t.partition === 0);
    expect(p0.map((t) => [t.attempt, t.ok])).toEqual([
      [0, false],
      [1, true],
    ]);
    expect(p0[0].error).toBe('Error: flaky worker');
    // What the reduce tasks read is what the map tasks wrote.
    const out = map.tasks.reduce((n, t) => n + (t.recordsOut ?? 0), 0);
    expect(result.tasks.filter((t) => t.ok).reduce((n, t) => n + (t.recordsIn ?? 0), 0)).toBe(out);
    expect(Object.values(first.input)[0]).toHaveLength(2);
  });

  it('keeps quiet batches in memory only, and writes the others once enough of them wait, and when the coordinator stops', async () => {
    const { coordinator, run, blobs } = testCoordinator(
      { batchInterval: 1000 },
      (ctx) => {
        ctx.queueStream([['a'], ['b'], ['c']], { oneAtATime: true }).print();
      },
      { history: { flushBatches: 2 } },
    );
    await run(6);
    const statuses = coordinator.history.recent().map((b) => b.status);
    expect(statuses).toEqual(['completed', 'completed', 'completed', 'quiet', 'quiet', 'quiet']);
    // Two batches make a file; the third waits for the stop.
    expect(await blobs.list('history/')).toHaveLength(1);
    await coordinator.stop();
    const files = await blobs.list('history/');
    expect(files).toHaveLength(2);
    const read = await readHistory(blobs, { before: 10_000 });
    expect(read.batches.map((b) => b.time)).toEqual([1000, 2000, 3000]);
    expect(read.job).toBe('engine-test');
    expect(read.batchInterval).toBe(1000);
  });

  it('a batch that fails is in the history with its error; the retry that completes it wins when read back', async () => {
    let fail = true;
    const { coordinator, run, blobs, clock } = testCoordinator(
      { batchInterval: 1000, maxTaskAttempts: 1 },
      (ctx) => {
        ctx.queueStream([['a']], { oneAtATime: true }).print();
      },
      {
        wrapInvoker: (inner) =>
          interceptInvoker(inner, async (task, go) => (fail ? { ok: false, error: { name: 'Error', message: 'worker gone' }, retryable: true } : go())),
      },
    );
    await expect(run(1)).rejects.toThrow(/worker gone/);
    fail = false;
    clock.set(coordinator.nextBatchTime);
    await coordinator.runNextBatch();
    expect(coordinator.history.recent().map((b) => [b.time, b.status])).toEqual([
      [1000, 'failed'],
      [1000, 'completed'],
    ]);
    expect(coordinator.history.recent()[0].error).toContain('worker gone');
    await coordinator.stop();
    expect((await readHistory(blobs, { before: 5000 })).batches.map((b) => [b.time, b.status])).toEqual([[1000, 'completed']]);
  });

  it('overlapping writers never overwrite each other: a superseded coordinator that reports a batch failed (its commit refused) reads as the completed one', async () => {
    const blobs = new MemoryBlobStore();
    const old = new BatchHistory(blobs, { job: 'j', batchInterval: 1000, writer: 'e1-aaaa' }, { flushBatches: 100 });
    const next = new BatchHistory(blobs, { job: 'j', batchInterval: 1000, writer: 'e2-bbbb' }, { flushBatches: 100 });
    // Both run batch 2000 at once: the new coordinator commits it, the old one's commit is fenced.
    await Promise.all([old.add(summary(1000), 0), next.add(summary(2000, 'completed', 2050), 0), old.add({ ...summary(2000, 'failed', 2090), error: 'fenced' }, 0)]);
    await Promise.all([old.flush(), next.flush()]);
    expect((await blobs.list('history/')).sort()).toEqual([historyKey(1000, 2000, 'e1-aaaa'), historyKey(2000, 2000, 'e2-bbbb')].sort());
    const read = await readHistory(blobs, { before: 3000 });
    expect(read.batches.map((b) => [b.time, b.status])).toEqual([
      [1000, 'completed'],
      [2000, 'completed'],
    ]);
  });

  it('reads the newest batches first, group by group, up to a limit and not past `before`', async () => {
    const blobs = new MemoryBlobStore();
    const h = new BatchHistory(blobs, { job: 'j', batchInterval: 1000, writer: 'e1' }, { flushBatches: 1 });
    // Hours apart: several listing groups (each under 3 hours).
    const times = [1, 2, 3, 4, 5, 6].map((i) => 1_796_000_000_000 + i * 3_600_000);
    for (const t of times) await h.add(summary(t), t);
    const newest = await readHistory(blobs, { before: times[5] + 1, limit: 2 });
    expect(newest.batches.map((b) => b.time)).toEqual(times.slice(4));
    const earlier = await readHistory(blobs, { before: times[2] });
    expect(earlier.batches.map((b) => b.time)).toEqual(times.slice(0, 3));
    const bounded = await readHistory(blobs, { before: times[5], lookBackMs: 2.5 * 3_600_000 });
    expect(bounded.batches.map((b) => b.time)).toEqual(times.slice(3));
    expect(h.since(4).map((b) => b.time)).toEqual(times.slice(4));
    expect(h.added).toBe(6);
  });

  it('a page that reads again with a cache lists only the newest groups and reads only files it has not read', async () => {
    const blobs = new MemoryBlobStore();
    const calls = { list: [] as string[], get: [] as string[] };
    const counted: BlobStore = {
      put: (key, body) => blobs.put(key, body),
      get: (key) => (calls.get.push(key), blobs.get(key)),
      getRange: (key, start, end) => blobs.getRange(key, start, end),
      exists: (key) => blobs.exists(key),
      delete: (keys) => blobs.delete(keys),
      list: (prefix) => (calls.list.push(prefix), blobs.list(prefix)),
    };
    const h = new BatchHistory(blobs, { job: 'j', batchInterval: 1000, writer: 'e1' }, { flushBatches: 1 });
    const hour = 3_600_000;
    const times = [1, 4, 7, 10].map((i) => 1_796_000_000_000 + i * hour);
    for (const t of times) await h.add(summary(t), t);
    const cache = historyCache();
    const before = times[3] + 1;
    const first = await readHistory(counted, { before, cache, lookBackMs: 12 * hour });
    expect(first.batches.map((b) => b.time)).toEqual(times);
    expect(calls.get).toHaveLength(4);
    const listedFirst = calls.list.length;
    calls.list.length = 0;
    calls.get.length = 0;

    // A new file in the newest group: the second read lists the newest two groups only, and reads that one file.
    const later = times[3] + 60_000;
    await h.add(summary(later), later);
    const second = await readHistory(counted, { before: later + 1, cache, lookBackMs: 12 * hour });
    expect(second.batches.map((b) => b.time)).toEqual([...times, later]);
    expect(calls.get).toEqual([historyKey(later, later, 'e1')]);
    expect(calls.list.length).toBeLessThanOrEqual(2);
    expect(listedFirst).toBeGreaterThan(2);
  });

  it('a history write that fails is reported and the batch goes on', async () => {
    const blobs = new MemoryBlobStore();
    // The blob store of the job, but S3 is down for history files.
    const failing: BlobStore = {
      put: (key, body) => (key.startsWith('history/') ? Promise.reject(new Error('S3 is down')) : blobs.put(key, body)),
      get: (key) => blobs.get(key),
      getRange: (key, start, end) => blobs.getRange(key, start, end),
      exists: (key) => blobs.exists(key),
      delete: (keys) => blobs.delete(keys),
      list: (prefix) => blobs.list(prefix),
    };
    const { coordinator, run, log } = testCoordinator(
      { batchInterval: 1000 },
      (ctx) => {
        ctx.queueStream([['a'], ['b']], { oneAtATime: true }).print();
      },
      { history: { flushBatches: 1 }, blobs: failing },
    );
    await run(2);
    expect(coordinator.lastCompleted).toBe(2000);
    await expect.poll(() => log.warnings.some((l) => l.includes("could not write the batches' history: S3 is down"))).toBe(true);
  });
});
