import { describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { defineJob } from '../../lib/api/job.ts';
import { FencedError, JobDefinitionError } from '../../lib/core/errors.ts';
import { cameBackFull, Placement, runsOf, smaller } from '../../lib/engine/placement.ts';
import { type BatchRecord, type Checkpoint, keys } from '../../lib/engine/protocol.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import type { BlobStore, Invoker } from '../../lib/ports/index.ts';
import { interceptInvoker, testCoordinator } from '../helpers/engine.ts';
import { OpenStream } from '../helpers/openStream.ts';

// Issue 14: small batches run inside the coordinator, large ones fan out; same results either way.

const bounds = { records: 100, bytes: 1000 };

describe('Placement: where a batch runs, from what the cut saw', () => {
  it('known sizes decide directly: records of blocks and queue slices, bytes of files', () => {
    const p = new Placement(bounds, undefined);
    const cap = p.cap();
    expect(cap).toEqual({ records: 100, bytes: 1000 });
    expect(p.decide({ q: [{ count: 60 }, { count: 40 }] }, cap)).toBe('coordinator');
    expect(p.decide({ q: [{ count: 60 }, { count: 41 }] }, cap)).toBe('workers');
    expect(p.decide({ f: [{ key: 'a', size: 999 }] }, cap)).toBe('coordinator');
    expect(p.decide({ f: [{ key: 'a', size: 600 }], g: [{ key: 'b', size: 600 }] }, cap)).toBe('workers');
    // A split that tells neither its records nor its bytes is of unknown size.
    expect(p.decide({ x: [{ key: 'a' }] }, cap)).toBe('workers');
  });

  it('open splits run in the coordinator only when the cut capped them', () => {
    const p = new Placement(bounds, undefined);
    const capped = [
      { open: true, shard: 'a', max: 50 },
      { open: true, shard: 'b', max: 50 },
    ];
    expect(p.decide({ k: capped }, p.cap())).toBe('coordinator');
    expect(p.decide({ k: capped }, undefined)).toBe('workers');
    expect(p.decide({ k: [{ open: true, shard: 'a' }] }, p.cap())).toBe('workers');
    // A source that ignored the cap (its splits' max is its own): fan out.
    expect(p.decide({ k: [{ open: true, shard: 'a', max: 10_000 }] }, p.cap())).toBe('workers');
  });

  it('after a small batch the next is capped; after a large or full one it is not; 0 never caps', () => {
    const p = new Placement(bounds, undefined);
    p.completed(30, false);
    expect(p.cap()).toBeDefined();
    p.completed(101, false);
    expect(p.cap()).toBeUndefined();
    p.completed(100, true);
    expect(p.cap()).toBeUndefined();
    p.completed(100, false);
    expect(p.cap()).toBeDefined();
    const off = new Placement({ records: 0, bytes: 1000 }, undefined);
    expect(off.enabled).toBe(false);
    expect(off.cap()).toBeUndefined();
    expect(off.decide({ q: [{ count: 1 }] }, { records: 1, bytes: 1 })).toBe('workers');
  });

  it("a new coordinator's first batch follows the checkpoint's hint; a missing or malformed hint caps", () => {
    expect(new Placement(bounds, { records: 5000, full: false }).cap()).toBeUndefined();
    expect(new Placement(bounds, { records: 20, full: true }).cap()).toBeUndefined();
    expect(new Placement(bounds, { records: 20, full: false }).cap()).toBeDefined();
    expect(new Placement(bounds, undefined).cap()).toBeDefined();
    expect(new Placement(bounds, 'nonsense').cap()).toBeDefined();
    expect(new Placement(bounds, { records: '20' }).snapshot()).toBeUndefined();
  });

  it('a recovered batch runs where its record was cut for if it fits, and sealed known sizes fit either way', () => {
    const p = new Placement(bounds, { records: 5000, full: false });
    expect(p.decideRecovered({ k: [{ open: true, shard: 'a', max: 100 }] }, 'coordinator')).toBe('coordinator');
    expect(p.decideRecovered({ k: [{ open: true, shard: 'a', max: 10_000 }] }, 'workers')).toBe('workers');
    expect(p.decideRecovered({ k: [{ shard: 'a', count: 7 }] }, 'workers')).toBe('coordinator');
    expect(p.decideRecovered({ k: [{ shard: 'a', count: 7 }] }, undefined)).toBe('coordinator');
  });

  it('full: a cut that handed out the whole cap, or an open split sealed at its max or byte cap', () => {
    expect(Placement.cutFull([{ count: 60 }, { count: 40 }], bounds)).toBe(true);
    expect(Placement.cutFull([{ count: 60 }], bounds)).toBe(false);
    expect(Placement.cutFull([{ count: 600 }], undefined)).toBe(false);
    expect(cameBackFull({ open: true, max: 5 }, { count: 5 })).toBe(true);
    expect(cameBackFull({ open: true, max: 5 }, { count: 4 })).toBe(false);
    expect(cameBackFull({ open: true, max: 5 }, { count: 1, full: true })).toBe(true);
    expect(smaller(undefined, 3)).toBe(3);
    expect(smaller(2, 3)).toBe(2);
    expect(smaller(4, undefined)).toBe(4);
    expect(runsOf({ runs: 'coordinator' })).toBe('coordinator');
    expect(runsOf({ runs: 7 })).toBeUndefined();
  });
});

describe('coordinatorBatchRecords / coordinatorBatchBytes options', () => {
  const build = () => undefined;
  it('default to 1000 records and 4 MiB; 0 is allowed', () => {
    expect(defineJob({ name: 'j', batchInterval: '1s' }, build).options).toMatchObject({ coordinatorBatchRecords: 1000, coordinatorBatchBytes: 4 * 1024 * 1024 });
    expect(defineJob({ name: 'j', batchInterval: '1s', coordinatorBatchRecords: 0, coordinatorBatchBytes: 5 }, build).options).toMatchObject({
      coordinatorBatchRecords: 0,
      coordinatorBatchBytes: 5,
    });
  });
  it('refuse what is not a whole number >= 0, saying what to write', () => {
    expect(() => defineJob({ name: 'j', batchInterval: '1s', coordinatorBatchRecords: -1 }, build)).toThrow(JobDefinitionError);
    expect(() => defineJob({ name: 'j', batchInterval: '1s', coordinatorBatchRecords: 1.5 }, build)).toThrow(
      /job j: coordinatorBatchRecords must be a whole number >= 0 \(0 fans every batch out to workers\), got the number 1\.5/,
    );
    expect(() => defineJob({ name: 'j', batchInterval: '1s', coordinatorBatchBytes: '16MB' as unknown as number }, build)).toThrow(
      /job j: coordinatorBatchBytes must be a whole number >= 0 \(e\.g\. 4194304 for 4 MiB\), got the string "16MB"/,
    );
  });
});

/** An invoker that counts the tasks it is given. */
function counting(calls: { n: number }) {
  return (inner: Invoker) =>
    interceptInvoker(inner, (_task, go) => {
      calls.n++;
      return go();
    });
}

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

async function outputs(sink: BlobStore, prefix: string): Promise<string[]> {
  const lines: string[] = [];
  for (const k of await sink.list(prefix)) if (k.includes('part-')) lines.push(...text(await sink.get(k)).split('\n').filter(Boolean));
  return lines.sort();
}

const wordCount = (ctx: StreamingContext) =>
  ctx
    .kinesisStream<string>('s')
    .map((w) => [w, 1] as [string, number])
    .reduceByKey((x, y) => x + y, { numPartitions: 2 })
    .updateStateByKey((vs: number[], s: number | undefined) => vs.reduce((a, b) => a + b, s ?? 0))
    .saveAsTextFiles('out/counts');

describe('batches inside the coordinator', () => {
  it('a small batch makes no invocation, a capped batch that came back full makes the next fan out, and the output is what workers make', async () => {
    // Prepare: the same stream and job, once with batches in the coordinator (cap 4 over 2 shards), once always fanned out.
    const feed = (stream: OpenStream, batch: number) => {
      if (batch === 0) {
        stream.append(0, 'a');
        stream.append(1, 'b');
      }
      if (batch === 1) stream.append(1, 'a', 'a', 'c', 'c', 'c');
      if (batch === 3) stream.append(0, 'b');
    };
    const runWith = async (records: number) => {
      const stream = new OpenStream(2);
      const sink = new MemoryBlobStore();
      const calls = { n: 0 };
      const perBatch: number[] = [];
      const t = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: records }, wordCount, {
        sources: stream.sources(),
        sinks: (location) => ({ store: sink, key: location }),
        wrapInvoker: counting(calls),
      });
      const runs: unknown[] = [];
      for (let b = 0; b < 5; b++) {
        feed(stream, b);
        const before = calls.n;
        await t.run(1);
        perBatch.push(calls.n - before);
        runs.push((await t.meta.get<BatchRecord>(keys.batch(t.coordinator.lastCompleted)))!.value.runs);
      }
      const lines = [];
      for (const time of [1000, 2000, 3000, 4000, 5000]) lines.push((await outputs(sink, `out/counts-${time}/`)).join(' '));
      return { perBatch, runs, lines, checkpoint: (await t.meta.get<Checkpoint>(keys.checkpoint))!.value };
    };

    // Act
    const local = await runWith(4);
    const fanned = await runWith(0);

    // Assess: batch 1 (one record per shard, under the shard's share of 2) and batch 2 (capped at 2
    // per shard: 'a', 'a' of shard 1) run inside; batch 2 came back full, so batch 3 fans out and
    // takes the rest ('c' × 3, a small batch); batches 4 ('b') and 5 (nothing) run inside again.
    expect(local.runs).toEqual(['coordinator', 'coordinator', 'workers', 'coordinator', 'coordinator']);
    expect(local.perBatch[0]).toBe(0);
    expect(local.perBatch[1]).toBe(0);
    expect(local.perBatch[2]).toBeGreaterThan(0);
    expect(local.perBatch[3]).toBe(0);
    expect(fanned.runs).toEqual(['workers', 'workers', 'workers', 'workers', 'workers']);
    expect(fanned.perBatch.every((n) => n > 0)).toBe(true);
    // The records beyond the cap waited one batch: the totals after the last batch are the same.
    expect(local.lines[4]).toBe(fanned.lines[4]);
    expect(local.lines[4]).toBe('(a,3) (b,2) (c,3)');
    expect(local.lines[1]).toBe('(a,3) (b,1)');
    expect(local.checkpoint.placement).toEqual({ records: 0, full: false });
    expect(fanned.checkpoint.placement).toBeUndefined();
  });

  it("a new coordinator's first batch follows the last batch's size in the checkpoint", async () => {
    // Prepare: a first coordinator commits a batch larger than the bound (5 records > 4), and stops.
    const stream = new OpenStream(1);
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const sink = new MemoryBlobStore();
    const common = { meta, blobs, sources: stream.sources(), sinks: (location: string) => ({ store: sink, key: location }) };
    const first = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 4 }, wordCount, common);
    stream.append(0, 'a', 'a', 'a', 'a', 'a');
    // The very first batch is capped at 4 and came back full; the next fans out and takes the last record.
    await first.run(2);
    expect((await meta.get<Checkpoint>(keys.checkpoint))!.value.placement).toEqual({ records: 1, full: false });
    await first.coordinator.stop();
    await first.coordinator.releaseLease();

    // Act: the next minute's coordinator runs the next batch; 9 records arrived meanwhile.
    stream.append(0, 'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b');
    const calls = { n: 0 };
    const second = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 4 }, wordCount, { ...common, owner: 'B', wrapInvoker: counting(calls) });
    await second.run(1);

    // Assess: the hint (1 record, not full) capped its first batch, which ran inside and came back full.
    const record = (await meta.get<BatchRecord>(keys.batch(3000)))!.value;
    expect(record.runs).toBe('coordinator');
    expect(calls.n).toBe(0);
    expect((await meta.get<Checkpoint>(keys.checkpoint))!.value.placement).toEqual({ records: 4, full: true });
    expect(await outputs(sink, 'out/counts-3000/')).toEqual(['(a,5)', '(b,4)']);
  });

  it.each([
    { cutFor: 'coordinator', cutWith: 1000, recoverWith: 0, recoveredRuns: 'workers' },
    { cutFor: 'workers', cutWith: 0, recoverWith: 1000, recoveredRuns: 'coordinator' },
  ])('a batch cut for the $cutFor, crashed, and recovered on $recoveredRuns writes the same output', async ({ cutFor, cutWith, recoverWith, recoveredRuns }) => {
    // Prepare: the reference, run without a crash.
    const input = ['x', 'y', 'x', 'z', 'x'];
    const reference = new MemoryBlobStore();
    const refStream = new OpenStream(2);
    refStream.append(0, ...input.slice(0, 3));
    refStream.append(1, ...input.slice(3));
    await testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 0 }, wordCount, { sources: refStream.sources(), sinks: (l) => ({ store: reference, key: l }) }).run(1);

    // Act: a coordinator dies after the first stage of batch 1000; another recovers it with other bounds.
    const stream = new OpenStream(2);
    stream.append(0, ...input.slice(0, 3));
    stream.append(1, ...input.slice(3));
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const sink = new MemoryBlobStore();
    const common = { meta, blobs, sources: stream.sources(), sinks: (location: string) => ({ store: sink, key: location }), leaseMs: 5000 };
    const crashing = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: cutWith }, wordCount, {
      ...common,
      onStep: (step) => {
        if (step === 'stage') throw new Error('crash after a stage');
      },
    });
    await expect(crashing.run(1)).rejects.toThrow('crash after a stage');
    expect((await meta.get<BatchRecord>(keys.batch(1000)))!.value.runs).toBe(cutFor);
    // Records that arrive later are not in the batch: its input was sealed by the crashed run.
    stream.append(0, 'late');
    const calls = { n: 0 };
    const recovering = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: recoverWith }, wordCount, { ...common, owner: 'B', wrapInvoker: counting(calls) });
    recovering.clock.set(10_000);
    await recovering.coordinator.start();
    await recovering.coordinator.runNextBatch();

    // Assess
    const record = (await meta.get<BatchRecord>(keys.batch(1000)))!.value;
    expect(record.status).toBe('COMPLETED');
    expect(record.runs).toBe(recoveredRuns);
    expect(calls.n > 0).toBe(recoveredRuns === 'workers');
    expect(await outputs(sink, 'out/counts-1000/')).toEqual(await outputs(reference, 'out/counts-1000/'));
    expect(await outputs(sink, 'out/counts-1000/')).toEqual(['(x,3)', '(y,1)', '(z,1)']);
  });

  it('a superseded coordinator running a batch inside while a newer one fans it out: the newer one commits, the old one is fenced', async () => {
    // Prepare: coordinator A runs batch 1000 inside (5 records ≤ 1000); its shuffle writes are held.
    const stream = new OpenStream(1);
    stream.append(0, 'a', 'a', 'b', 'a', 'a');
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const sink = new MemoryBlobStore();
    const heldPuts: (() => Promise<void>)[] = [];
    let onHeld!: () => void;
    const aHolding = new Promise<void>((r) => (onHeld = r));
    const aBlobs: BlobStore = {
      ...blobs,
      put: (key, body) => {
        if (!key.includes('/shuffle/')) return blobs.put(key, body);
        return new Promise<void>((resolve, reject) => {
          heldPuts.push(() => blobs.put(key, body).then(resolve, reject));
          onHeld();
        });
      },
      get: (k) => blobs.get(k),
      getRange: (k, a, b) => blobs.getRange(k, a, b),
      exists: (k) => blobs.exists(k),
      delete: (k) => blobs.delete(k),
      list: (p) => blobs.list(p),
    };
    const common = { meta, sources: stream.sources(), sinks: (location: string) => ({ store: sink, key: location }), inlineLimit: 0, leaseMs: 5000 };
    const aCalls = { n: 0 };
    const a = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 1000 }, wordCount, { ...common, blobs: aBlobs, owner: 'A', wrapInvoker: counting(aCalls) });
    await a.coordinator.start();
    a.clock.set(1000);
    const aRun = a.coordinator.runNextBatch();
    await aHolding;
    expect((await meta.get<BatchRecord>(keys.batch(1000)))!.value.runs).toBe('coordinator');

    // Act: A's lease runs out; B (which fans every batch out) recovers the batch, and A's held
    // shuffle writes land while B's reducers run.
    const bCalls = { n: 0 };
    const b = testCoordinator({ batchInterval: 1000, coordinatorBatchRecords: 0 }, wordCount, {
      ...common,
      blobs,
      owner: 'B',
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          bCalls.n++;
          if (task.stage.kind !== 'map') for (const land of heldPuts.splice(0)) await land();
          return go();
        }),
    });
    b.clock.set(10_000);
    await b.run(1);

    // Assess: A never invoked a worker; B fanned out and committed; A is fenced; the output is B's.
    await expect(aRun).rejects.toBeInstanceOf(FencedError);
    expect(aCalls.n).toBe(0);
    expect(bCalls.n).toBeGreaterThan(0);
    expect(b.coordinator.lastCompleted).toBe(1000);
    expect((await meta.get<BatchRecord>(keys.batch(1000)))!.value.runs).toBe('workers');
    expect(await outputs(sink, 'out/counts-1000/')).toEqual(['(a,4)', '(b,1)']);
  });
});
