import { describe, expect, it } from 'vitest';
import type { BatchInfo, StreamingContext } from 'sluice';
import { RecordError } from 'sluice';
import { runBatches } from 'sluice/testing';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { memoryLog } from '../../lib/local/log.ts';

const input = [['3', '4', 'x', '5'], ['oops', '1']];

/** Parses numbers; a bad one throws in `map`, and a stray non-pair reaches `reduceByKey`. */
function job(infos: BatchInfo[]) {
  return (ctx: StreamingContext) => {
    ctx.addListener({ onBatchCompleted: (b) => infos.push(b) });
    return ctx
      .queueStream(input, { numPartitions: 2 })
      .map((s) => {
        const n = Number(s);
        if (Number.isNaN(n)) throw new Error(`not a number: ${s}`);
        return n;
      })
      .map((n) => (n === 1 ? ('lonely' as unknown as [string, number]) : (['sum', n] as [string, number])))
      .reduceByKey((a, b) => a + b);
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
    const keys = await blobs.list('dead-letters/');
    const letters = [];
    for (const k of keys) {
      const text = new TextDecoder().decode(await blobs.get(k));
      for (const line of text.trim().split('\n')) letters.push(JSON.parse(line));
    }
    expect(letters).toEqual([
      {
        batchTime: 1000,
        node: 'map-1',
        error: 'not a number: x',
        source: { node: 'queue-1', partition: 1, offset: 0, split: { from: 0, to: 1, partition: 1, of: 2, count: 2 } },
        record: 'x',
      },
      {
        batchTime: 2000,
        node: 'map-1',
        error: 'not a number: oops',
        source: { node: 'queue-1', partition: 0, offset: 0, split: { from: 1, to: 2, partition: 0, of: 2, count: 1 } },
        record: 'oops',
      },
      {
        batchTime: 2000,
        node: 'reduceByKey-1',
        error: expect.stringMatching(/reduceByKey-1 expects \[key, value\] pairs, got the string "lonely"/),
        source: { node: 'queue-1', partition: 1, offset: 0, split: { from: 1, to: 2, partition: 1, of: 2, count: 1 } },
        record: 'lonely',
      },
    ]);
  });

  it("by default ('fail') the same input fails the batch with a RecordError", async () => {
    const err = await runBatches({ batchInterval: 1000, batches: 2, maxTaskAttempts: 1 }, job([])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecordError);
    expect((err as Error).message).toContain('map-1 threw on the string "x": not a number: x');
  });
});
