import { describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { listDeadLetters, readDeadLetters } from '../../lib/engine/deadLetters.ts';
import { formatJobStatus, readJobStatus } from '../../lib/engine/jobStatus.ts';
import { readState } from '../../lib/engine/stateDump.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { testCoordinator } from '../helpers/engine.ts';

// `sluice status` reads where a job stands from its stores, as a coordinator would, writing nothing.

describe('readJobStatus and formatJobStatus', () => {
  it('a job never run: no checkpoint, said so', async () => {
    const status = await readJobStatus(new MemoryMetaStore(), new MemoryBlobStore());
    expect(status).toEqual({ inFlight: [], deadLetters: [] });
    expect(formatJobStatus(status, 0)).toBe('no checkpoint: the job has not committed a batch here yet\n');
  });

  it('after a clean stop with quiet batches: the last batch done is past the last commit, the lease free, nothing in flight', async () => {
    // Prepare: a batch with input, then quiet ones, then a clean stop.
    const queue: string[][] = [['a b']];
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const c = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000, onRecordError: 'dead-letter' }, (ctx: StreamingContext) => void ctx.queueStream(queue).map((l) => {
      if (l === 'poison') throw new Error('bad line');
      return l;
    }).countByValue().print(), { meta, blobs });
    await c.run(1);
    queue.push(['poison']);
    await c.run(4);
    await c.coordinator.stop();
    await c.coordinator.releaseLease();

    // Act
    const status = await readJobStatus(meta, blobs);

    // Assess
    expect(status.checkpoint).toMatchObject({ job: 'engine-test', batchInterval: 1000, lastCompleted: 2000, lastDone: 5000, lastInput: 2000, stateful: [] });
    expect(status.lease).toEqual({ owner: '', expiresAt: 0, idle: false });
    expect(status.inFlight).toEqual([]);
    expect(status.deadLetters).toEqual([{ time: 2000, files: 1 }]);
    const text = formatJobStatus(status, 65_000);
    expect(text).toContain('last batch done:       1970-01-01 00:00:05 UTC (batch 5000), 60 s ago (quiet since the last commit, 1970-01-01 00:00:02 UTC (batch 2000))\n');
    expect(text).toContain('lease:                 free (released)\n');
    expect(text).toContain('dead letters:          1 file(s) in 1 batch(es), the latest 1970-01-01 00:00:02 UTC (batch 2000)\n');
  });

  it('after a crash in a batch: the lease held, the batch in flight', async () => {
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const c = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000 }, (ctx: StreamingContext) => void ctx.queueStream([['a'], ['b'], ['c']]).countByValue().print(), {
      meta,
      blobs,
      leaseMs: 30_000,
      onStep: (step, t) => {
        if (step === 'sealed' && t === 2000) throw new Error('crash');
      },
    });
    await c.run(1);
    await expect(c.run(1)).rejects.toThrow('crash');

    const status = await readJobStatus(meta, blobs);
    expect(status.checkpoint?.lastDone).toBe(1000);
    expect(status.inFlight).toEqual([2000]);
    expect(status.lease?.owner).toBe('test-coordinator');
    const text = formatJobStatus(status, 40_000);
    expect(text).toMatch(/^lease: {17}held by test-coordinator until 1970-01-01T00:00:3\d\.000Z \(expired: the holder stopped without releasing it\)$/m);
    expect(text).toContain('batches in flight:     2000 (a run stopped in it; the next run recovers it from its lineage record)\n');
  });
});

describe('readState: the keyed state as the last commit left it', () => {
  it('decodes each partition of updateStateByKey, and a window without an inverse has no keys', async () => {
    // Prepare: totals per word over two batches, and a window beside them.
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const c = testCoordinator(
      { batchInterval: 1000, coordinatorBatchRecords: 1000 },
      (ctx: StreamingContext) => {
        const pairs = ctx.queueStream([['a', 'b', 'a'], ['b']]).map((w) => [w, 1] as [string, number]);
        pairs.updateStateByKey((ones: number[], n: number | undefined) => (n ?? 0) + ones.length, { numPartitions: 2 }).print();
        pairs.reduceByKeyAndWindow((x, y) => x + y, '2s').print();
      },
      { meta, blobs },
    );
    await c.run(2);

    // Act
    const all = await readState(meta, blobs);
    const totals = await readState(meta, blobs, 'updateStateByKey-1');

    // Assess
    expect(all.map((n) => n.nodeId).sort()).toEqual(['reduceByKeyAndWindow-1', 'updateStateByKey-1']);
    expect(all.find((n) => n.nodeId === 'reduceByKeyAndWindow-1')!.entries).toEqual([]);
    expect(totals).toHaveLength(1);
    expect(totals[0].time).toBe(2000);
    expect(Object.fromEntries(totals[0].entries.map((e) => [e.key, e.value]))).toEqual({ a: 2, b: 2 });
    expect(new Set(totals[0].entries.map((e) => e.partition)).size).toBeGreaterThanOrEqual(1);
    expect(totals[0].entries.find((e) => e.key === 'b')!.lastSeen).toBe(2000);
    expect(await readState(new MemoryMetaStore(), new MemoryBlobStore())).toEqual([]);
  });
});

describe('listDeadLetters and readDeadLetters', () => {
  it('lists the batches that set records aside, oldest first, and parses their letters; a line that is not one is refused with its place', async () => {
    const blobs = new MemoryBlobStore();
    await blobs.put('dead-letters/000000000002000/map-p0.jsonl', '{"batchTime":2000,"node":"map-1","error":"bad","source":null,"record":"x"}\n');
    await blobs.put('dead-letters/000000000001000/map-p1.jsonl', '{"batchTime":1000,"node":"reduceByKey-1","error":"worse","source":null,"record":null,"key":"k","records":[1,2]}\n');
    await blobs.put('dead-letters/000000000003000/map-p0.jsonl', 'not json\n');

    const batches = await listDeadLetters(blobs);
    expect(batches.map((b) => b.time)).toEqual([1000, 2000, 3000]);
    expect(await readDeadLetters(blobs, batches[0].files)).toEqual([{ batchTime: 1000, node: 'reduceByKey-1', error: 'worse', source: null, record: null, key: 'k', records: [1, 2] }]);
    expect((await readDeadLetters(blobs, batches[1].files))[0].record).toBe('x');
    await expect(readDeadLetters(blobs, batches[2].files)).rejects.toThrow('dead-letters/000000000003000/map-p0.jsonl line 1 is not a dead letter (not JSON): not json');
  });
});
