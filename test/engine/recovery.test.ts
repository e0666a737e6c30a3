import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { runBatches } from 'sluice/testing';
import { PROTOCOL_STEPS, type ProtocolStep } from '../../lib/engine/coordinator.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import { readSavedBatches } from '../helpers/outputs.ts';

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
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-recovery-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function uninterrupted() {
    const out = join(dir, 'reference');
    await runBatches({ batchInterval: 1000, batches: input.length, sinks: localSinks(out) }, job(out));
    return { counts: await readSavedBatches(out, 'counts'), json: await readSavedBatches(out, 'json') };
  }

  // Every step, in the first, a middle and the last batch.
  const cases: [ProtocolStep, number][] = PROTOCOL_STEPS.flatMap((s) => [
    [s, 1],
    [s, 4],
    [s, 8],
  ] as [ProtocolStep, number][]);

  it.each(cases)('crash after step %s in batch %i, then resume: outputs equal an uninterrupted run', async (step, batchNo) => {
    // Prepare
    const reference = await uninterrupted();
    const out = join(dir, 'crashed');
    const blobs = new MemoryBlobStore();
    const meta = new MemoryMetaStore();
    const common = { batchInterval: 1000, sinks: localSinks(out), blobs, meta };
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
    expect(reference.counts).toHaveLength(input.length);
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
