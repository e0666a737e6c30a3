import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { runBatches } from 'sluice/testing';
import { PROTOCOL_STEPS, type ProtocolStep } from '../../lib/engine/coordinator.ts';
import { keys } from '../../lib/engine/protocol.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import { readSavedBatches, type SavedBatch } from '../helpers/outputs.ts';

/** Eight batches of words: a shuffle, a cached stream read by two outputs, and a saved result. */
const input = [
  ['a b c', 'a a'],
  ['b b', 'c d e f'],
  [],
  ['x y', 'y z z z', 'a'],
  ['q'],
  ['r s t', 'u v', 'w'],
  ['a a a a'],
  ['end'],
];

function job(outDir: string) {
  return (ctx: StreamingContext) => {
    const counts = ctx
      .queueStream(input, { numPartitions: 2 })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 3 });
    counts.saveAsTextFiles(join(outDir, 'counts'));
    counts.map(([w, n]) => ({ w, n })).saveAsJsonFiles(join(outDir, 'json'));
  };
}

class Crash extends Error {}

describe('restart after a crash at every step of the batch protocol', () => {
  let dir: string;
  /** The uninterrupted run every crashed one is compared with, made once. */
  let reference: { counts: SavedBatch[]; json: SavedBatch[] };
  beforeAll(async () => {
    const refDir = await mkdtemp(join(tmpdir(), 'sluice-recovery-ref-'));
    try {
      const out = join(refDir, 'reference');
      await runBatches({ batchInterval: 1000, batches: input.length, sinks: localSinks(out) }, job(out));
      reference = { counts: await readSavedBatches(out, 'counts'), json: await readSavedBatches(out, 'json') };
    } finally {
      await rm(refDir, { recursive: true, force: true });
    }
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-recovery-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // Every step, in the first, the empty, a middle and the last batch.
  const cases: [ProtocolStep, number][] = PROTOCOL_STEPS.flatMap((s) => [
    [s, 1],
    [s, 3],
    [s, 4],
    [s, 8],
  ] as [ProtocolStep, number][]);

  it.each(cases)('crash after step %s in batch %i, then resume: outputs equal an uninterrupted run', async (step, batchNo) => {
    // Prepare
    const out = join(dir, 'crashed');
    const blobs = new MemoryBlobStore();
    const meta = new MemoryMetaStore();
    // inlineLimit 0: every map and cache output is a blob, so leftovers would show.
    const common = { batchInterval: 1000, sinks: localSinks(out), blobs, meta, inlineLimit: 0 };
    const crashAt = batchNo * 1000;
    let crashed = false;

    // Act: the first run dies at the step; the second resumes on the same stores.
    const first = runBatches(
      {
        ...common,
        batches: input.length,
        onStep: (s, t) => {
          if (!crashed && s === step && t === crashAt) {
            crashed = true;
            throw new Crash(`crash at ${s} of ${t}`);
          }
        },
      },
      job(out),
    );
    await expect(first).rejects.toBeInstanceOf(Crash);
    const done = (await meta.get<{ lastCompleted: number }>('checkpoint'))!.value.lastCompleted;
    await runBatches({ ...common, batches: (input.length * 1000 - done) / 1000 }, job(out));

    // Assess
    expect(await readSavedBatches(out, 'counts')).toEqual(reference.counts);
    expect(await readSavedBatches(out, 'json')).toEqual(reference.json);
    // One directory per batch with records: the empty third batch writes none (writeEmptyBatches is off).
    expect(reference.counts.map((b) => b.time)).toEqual([1000, 2000, 4000, 5000, 6000, 7000, 8000]);
    // Nothing the crash left behind outlives the run: only the last batch's record and received blocks remain.
    const last = keys.batch(input.length * 1000);
    expect((await blobs.list('batch/')).filter((k) => !k.startsWith(`${last}/input/`))).toEqual([]);
    expect(await meta.list('batch/')).toEqual([last]);
  });

  it('leaves no shuffle or cache blobs behind once batches commit', async () => {
    const blobs = new MemoryBlobStore();
    const out = join(dir, 'gc');
    await runBatches({ batchInterval: 1000, batches: input.length, sinks: localSinks(out), blobs, inlineLimit: 0 }, (ctx) => {
      const counts = ctx
        .generatorStream({ ratePerSec: 50, make: (i) => `w${i % 7}`, numPartitions: 2 })
        .map((w) => [w, 1] as [string, number])
        .reduceByKey((a, b) => a + b, { numPartitions: 3 });
      counts.saveAsTextFiles(join(out, 'counts'));
      counts.print();
    });
    const left = await blobs.list('batch/');
    expect(left.filter((k) => k.includes('/shuffle/') || k.includes('/cache/'))).toEqual([]);
    // Only the last batch's received blocks are kept (remember defaults to one interval).
    expect(left.length).toBe(2);
    expect(new Set(left.map((k) => k.slice(0, 21)))).toEqual(new Set([`batch/${String(input.length * 1000).padStart(15, '0')}`]));
  });
});

describe('cleanup of batch blobs and records', () => {
  /** Stores that count their listings. */
  function countingStores() {
    const listed: string[] = [];
    const blobs = new (class extends MemoryBlobStore {
      override list(prefix: string) {
        listed.push(`blob ${prefix}`);
        return super.list(prefix);
      }
    })();
    const meta = new (class extends MemoryMetaStore {
      override list(prefix: string) {
        listed.push(`meta ${prefix}`);
        return super.list(prefix);
      }
    })();
    return { blobs, meta, listed };
  }

  const wordCount = (ctx: StreamingContext) =>
    ctx
      .generatorStream({ ratePerSec: 20, make: (i) => `w${i % 5}`, numPartitions: 2 })
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 2 })
      .foreachRDD((b) => b.count());

  it('a batch whose attempts all succeed deletes by name: the stores are listed once, at start, however many batches run', async () => {
    for (const batches of [3, 9]) {
      const { blobs, meta, listed } = countingStores();
      await runBatches({ batchInterval: 1000, batches, blobs, meta, inlineLimit: 0 }, wordCount);
      expect(listed).toEqual(['blob state/', 'blob batch/', 'meta batch/']);
      expect((await blobs.list('batch/')).every((k) => k.startsWith(`${keys.batchBlobs(batches * 1000)}input/`))).toBe(true);
      expect(await meta.list('batch/')).toEqual([keys.batch(batches * 1000)]);
    }
  });

  it('a task attempt that failed after writing its output: the batch lists its prefix and deletes that output too', async () => {
    const { testCoordinator, interceptInvoker } = await import('../helpers/engine.ts');
    const { blobs, meta, listed } = countingStores();
    let failed = 0;
    const { run } = testCoordinator({ batchInterval: 1000 }, wordCount, {
      blobs,
      meta,
      inlineLimit: 0,
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          const result = await go();
          // Batch 2's first map task writes its shuffle blob, then its answer is lost.
          if (task.time === 2000 && task.stage.kind === 'map' && task.partition === 0 && task.attempt === 0) {
            failed++;
            return { ok: false, retryable: true, error: { name: 'Error', message: 'answer lost' } };
          }
          return result;
        }),
    });
    await run(3);
    expect(failed).toBe(1);
    // Its scratch prefixes at its cleanup, and its whole prefix when `remember` lets it go (after batch 3).
    const prefix = keys.batchBlobs(2000);
    expect(listed.filter((l) => l.includes(prefix))).toEqual([`blob ${prefix}shuffle/`, `blob ${prefix}cache/`, `blob ${prefix}payloads/`, `blob ${prefix}`]);
    expect(listed.filter((l) => l.includes(keys.batchBlobs(1000)) || l.includes(keys.batchBlobs(3000)))).toEqual([]);
    expect((await blobs.list('batch/')).filter((k) => /\/(shuffle|cache)\//.test(k))).toEqual([]);
  });

  it('a new coordinator deletes what the one before it kept, once `remember` no longer reaches it', async () => {
    const { blobs, meta } = countingStores();
    const remembered = (ctx: StreamingContext) => {
      ctx.remember('3s');
      wordCount(ctx);
    };
    await runBatches({ batchInterval: 1000, batches: 4, blobs, meta, inlineLimit: 0 }, remembered);
    const times = async () => [...new Set((await blobs.list('batch/')).map((k) => Number(k.slice(6, 21))))];
    // Batch 4 keeps the 3 s before it: batches 2 to 4.
    expect(await times()).toEqual([2000, 3000, 4000]);
    await runBatches({ batchInterval: 1000, batches: 2, blobs, meta, inlineLimit: 0 }, remembered);
    expect(await times()).toEqual([4000, 5000, 6000]);
    expect(await meta.list('batch/')).toEqual([4000, 5000, 6000].map(keys.batch));
  });
});
