import { describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { FencedError } from '../../lib/core/errors.ts';
import type { Receiver } from '../../lib/core/receiver.ts';
import { MAX_VALUE_BYTES } from '../../lib/aws/dynamoMetaStore.ts';
import { keys } from '../../lib/engine/protocol.ts';
import { STATE_CACHE_PARTITIONS } from '../../lib/engine/taskState.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import type { BlobStore, InputSplit, JsonValue, MetaItem, MetaStore, SourceFactory } from '../../lib/ports/index.ts';
import { interceptInvoker, testCoordinator } from '../helpers/engine.ts';
import { OpenStream } from '../helpers/openStream.ts';

/** A blob store whose puts that `hold` picks wait until `release()`: a write that lands late. */
function holdingStore(inner: BlobStore, hold: (key: string) => boolean) {
  const held: (() => Promise<void>)[] = [];
  let onHeld: (() => void) | undefined;
  const store: BlobStore = {
    put: (key, body) => {
      if (!hold(key)) return inner.put(key, body);
      return new Promise<void>((resolve, reject) => {
        held.push(() => inner.put(key, body).then(resolve, reject));
        onHeld?.();
      });
    },
    get: (k) => inner.get(k),
    getRange: (k, a, b) => inner.getRange(k, a, b),
    exists: (k) => inner.exists(k),
    delete: (k) => inner.delete(k),
    list: (p) => inner.list(p),
  };
  return {
    store,
    /** Resolves once a put is held. */
    held: () => new Promise<void>((resolve) => (held.length ? resolve() : (onHeld = resolve))),
    /** Lets every held put land now, in order. */
    release: async () => {
      for (const land of held.splice(0)) await land();
    },
  };
}

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

describe('exactly-once when attempts overlap in time (issue 10)', () => {
  it('an output over an open split writes what was sealed, however late a superseded attempt writes (1)', async () => {
    // Prepare: five records readable; the first task's writes are held, and three more records arrive before its retry.
    const stream = new OpenStream(1);
    stream.append(0, 'r1', 'r2', 'r3', 'r4', 'r5');
    const sink = new MemoryBlobStore();
    let holding = false;
    const late = holdingStore(sink, () => holding);
    let first = true;
    const t = testCoordinator({ batchInterval: 1000, taskTimeout: '10s' }, (ctx) => ctx.kinesisStream<string>('s').map((r) => r.toUpperCase()).saveAsTextFiles('out/lines'), {
      sources: stream.sources(),
      sinks: (location) => ({ store: late.store, key: location }),
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          if (first) {
            // The first task runs on unanswered (its answer is lost); the coordinator times it out.
            first = false;
            holding = true;
            void Promise.race([go(), late.held()]).then(() => t.clock.advance(20_000));
            return new Promise(() => {});
          }
          holding = false;
          if (stream.shards[0].length === 5) stream.append(0, 'r6', 'r7', 'r8');
          return go();
        }),
    });

    // Act: the batch commits; then whatever the first attempt still had to write lands.
    await t.run(1);
    await late.release();

    // Assess: the committed part holds the eight sealed records, and nothing overwrote it.
    expect(text(await sink.get('out/lines-1000/part-00000'))).toBe('R1\nR2\nR3\nR4\nR5\nR6\nR7\nR8\n');
    expect(await sink.exists('out/lines-1000/_SUCCESS')).toBe(true);
  });

  it("an old coordinator's late map output never lands where the new coordinator's reducers read (2)", async () => {
    // Prepare: coordinator A reads five records of batch 1000; its shuffle blob write is held.
    const stream = new OpenStream(1);
    stream.append(0, 'a', 'a', 'a', 'a', 'a');
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const sink = new MemoryBlobStore();
    const job = (ctx: StreamingContext) =>
      ctx
        .kinesisStream<string>('s')
        .map((w) => [w, 1] as [string, number])
        .reduceByKey((x, y) => x + y)
        .saveAsTextFiles('out/counts');
    const common = { meta, sources: stream.sources(), sinks: (location: string) => ({ store: sink, key: location }), inlineLimit: 0, leaseMs: 5000 };
    const aBlobs = holdingStore(blobs, (k) => k.includes('/shuffle/'));
    const a = testCoordinator({ batchInterval: 1000 }, job, { ...common, blobs: aBlobs.store, owner: 'A' });
    await a.coordinator.start();
    a.clock.set(1000);
    const aRun = a.coordinator.runNextBatch();
    await aBlobs.held();

    // Act: A's lease runs out; B takes over after three more records arrived, and A's held write
    // lands between B's map stage and B's reducer.
    stream.append(0, 'a', 'a', 'a');
    const b = testCoordinator({ batchInterval: 1000 }, job, {
      ...common,
      blobs,
      owner: 'B',
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          if (task.stage.kind === 'result') await aBlobs.release();
          return go();
        }),
    });
    b.clock.set(10_000);
    await b.run(1);

    // Assess: B's reducer read B's map output; A's late run is fenced.
    expect(text(await sink.get('out/counts-1000/part-00000'))).toBe('(a,8)\n');
    await expect(aRun).rejects.toBeInstanceOf(FencedError);
  });

  it('a recovering coordinator claims the batch: the old one can no longer seal it, the new one is not refused (3)', async () => {
    // Prepare: coordinator A cuts batch 1000; the answer of its first task is held.
    const stream = new OpenStream(2);
    stream.append(0, 'x', 'y');
    stream.append(1, 'z');
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const sink = new MemoryBlobStore();
    const job = (ctx: StreamingContext) => ctx.kinesisStream<string>('s').map((w) => [w, 1] as [string, number]).reduceByKey((x, y) => x + y, { numPartitions: 2 }).saveAsTextFiles('out/c');
    const common = { meta, blobs, sources: stream.sources(), sinks: (location: string) => ({ store: sink, key: location }), leaseMs: 5000 };
    let releaseA!: () => void;
    const answerHeld = new Promise<void>((r) => (releaseA = r));
    let aHeld!: () => void;
    const aHolding = new Promise<void>((r) => (aHeld = r));
    const a = testCoordinator({ batchInterval: 1000 }, job, {
      ...common,
      owner: 'A',
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          const answer = await go();
          if (task.partition === 0 && task.attempt === 0 && task.stage.kind === 'map') {
            aHeld();
            await answerHeld;
          }
          return answer;
        }),
    });
    await a.coordinator.start();
    a.clock.set(1000);
    const aRun = a.coordinator.runNextBatch();
    await aHolding;

    // Act: B takes over; after B has read (and claimed) the record, A's answer arrives and A tries to seal.
    stream.append(0, 'x');
    let aDone = false;
    const b = testCoordinator({ batchInterval: 1000 }, job, {
      ...common,
      owner: 'B',
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          if (!aDone) {
            aDone = true;
            releaseA();
            await aRun.catch(() => undefined);
          }
          return go();
        }),
    });
    b.clock.set(10_000);
    await b.run(1);

    // Assess: A was fenced at its seal; B committed the batch from what it read; one _SUCCESS, B's parts.
    await expect(aRun).rejects.toThrow(/could not seal the input of batch 1000: another coordinator has taken over/);
    expect(b.coordinator.lastCompleted).toBe(1000);
    const files = await sink.list('out/c-1000/');
    expect(files).toEqual(['out/c-1000/_SUCCESS', 'out/c-1000/part-00000', 'out/c-1000/part-00001']);
    const lines = (await Promise.all(files.filter((f) => f.includes('part')).map(async (f) => text(await sink.get(f))))).join('');
    expect(lines.trim().split('\n').sort()).toEqual(['(x,2)', '(y,1)', '(z,1)']);
  });

  it.each(['lease', 'checkpoint', 'batch/'])('a lost response to a successful write of %s is not taken for fencing (4)', async (key) => {
    // Prepare: the second matching write applies, its response is lost, and the SDK's retry finds its condition failed.
    let matching = 0;
    const inner = new MemoryMetaStore();
    const lossy: MetaStore = {
      get: (k) => inner.get(k),
      list: (p) => inner.list(p),
      delete: (k, c) => inner.delete(k, c),
      put: async (k, v, c) => {
        const applied = await inner.put(k, v, c);
        if (applied === undefined || !k.startsWith(key) || ++matching !== 2) return applied;
        return inner.put(k, v, c);
      },
    };
    const out = new Map<number, number>();
    const t = testCoordinator({ batchInterval: 1000 }, (ctx) => ctx.queueStream([[1, 2], [3], [4, 5, 6]]).count().foreachRDD(async (b, time) => void out.set(time, (await b.collect())[0] as number)), { meta: lossy });

    // Act
    await t.run(3);

    // Assess: every batch committed by the one coordinator, none refused as fenced.
    expect(matching).toBeGreaterThanOrEqual(2);
    expect([...out]).toEqual([
      [1000, 2],
      [2000, 1],
      [3000, 3],
    ]);
    expect(t.coordinator.lastCompleted).toBe(3000);
  });

  it('lineage past the size of a DynamoDB item goes to a blob instead of stopping the job (5)', async () => {
    // Prepare: a meta store that refuses values over DynamoDB's limit, as DynamoMetaStore does, and a source whose position holds 2,000 shards.
    const inner = new MemoryMetaStore();
    let largest = 0;
    const dynamoSized: MetaStore = {
      get: (k) => inner.get(k),
      list: (p) => inner.list(p),
      delete: (k, c) => inner.delete(k, c),
      put: async (k, v, c) => {
        const bytes = Buffer.byteLength(JSON.stringify(v));
        largest = Math.max(largest, bytes);
        if (bytes > MAX_VALUE_BYTES) throw new Error(`item ${k} is ${bytes} bytes, over the item limit`);
        return inner.put(k, v, c);
      },
    };
    const shards = Array.from({ length: 2000 }, (_, i) => `shardId-${String(i).padStart(12, '0')}`);
    const bigState: SourceFactory = () => ({
      async cut(time: number) {
        // Each shard's position and a resume iterator, as a Kinesis source keeps them.
        return { splits: [{ time }], state: Object.fromEntries(shards.map((s) => [s, `${'4'.repeat(56)}:${'i'.repeat(200)}:${time}`])) };
      },
      async read(split: InputSplit) {
        return { records: [split.time as JsonValue] };
      },
    });
    const blobs = new MemoryBlobStore();
    const seen: number[] = [];
    const t = testCoordinator({ batchInterval: 1000 }, (ctx) => ctx.receiverStream({ start() {}, stop() {} } as Receiver<number>).foreachRDD(async (b) => void seen.push(...((await b.collect()) as number[]))), {
      meta: dynamoSized,
      blobs,
      sources: bigState,
    });

    // Act
    await t.run(2);

    // Assess: both batches ran; every value the meta store took was under the limit; the large ones are blobs.
    expect(seen).toEqual([1000, 2000]);
    expect(largest).toBeLessThan(MAX_VALUE_BYTES);
    expect((await blobs.list('meta/')).length).toBeGreaterThan(0);
    const record = (await inner.get(keys.checkpoint)) as MetaItem<{ $spilled?: string }>;
    expect(record.value.$spilled).toMatch(/^meta\/checkpoint\//);
  });

  it('--allow-plan-change on a batch in flight keeps its sealed input and clears what the old plan wrote (7)', async () => {
    // Prepare: v1 repartitions into 3 and crashes after writing its parts of batch 1000.
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const sink = new MemoryBlobStore();
    const receiver = (records: string[]): Receiver<string> => ({ start: (store) => store(records), stop: () => {} });
    const v = (n: number, records: string[]) => (ctx: StreamingContext) => ctx.receiverStream(receiver(records)).named('in').repartition(n).saveAsTextFiles('out/r');
    const common = { meta, blobs, sinks: (location: string) => ({ store: sink, key: location }) };
    const v1 = testCoordinator({ batchInterval: 1000 }, v(3, ['p', 'q', 'r', 's']), {
      ...common,
      onStep: (step) => {
        if (step === 'part') throw new Error('crash after the parts');
      },
    });
    await expect(v1.run(1)).rejects.toThrow('crash after the parts');
    expect(await sink.list('out/r-1000/')).toEqual(['out/r-1000/part-00000', 'out/r-1000/part-00001', 'out/r-1000/part-00002']);
    await v1.coordinator.releaseLease();

    // Act: v2 (2 partitions) resumes with --allow-plan-change; its receiver has nothing new.
    const v2 = testCoordinator({ batchInterval: 1000 }, v(2, []), { ...common, allowPlanChange: true });
    await v2.run(1);

    // Assess: batch 1000 holds v2's two parts of the records v1 had received, and its _SUCCESS.
    expect(await sink.list('out/r-1000/')).toEqual(['out/r-1000/_SUCCESS', 'out/r-1000/part-00000', 'out/r-1000/part-00001']);
    const lines = await Promise.all(['part-00000', 'part-00001'].map(async (p) => text(await sink.get(`out/r-1000/${p}`))));
    expect(lines.join('').trim().split('\n').sort()).toEqual(['p', 'q', 'r', 's']);
  });

  it('a task carries only the splits it reads, and the count of every source (8)', async () => {
    const tasks: Record<string, any>[] = [];
    const t = testCoordinator(
      { batchInterval: 1000 },
      (ctx) => ctx.queueStream([Array.from({ length: 40 }, (_, i) => i)], { numPartitions: 8 }).map((x) => [x % 3, x] as [number, number]).reduceByKey((a, b) => a + b).print(),
      { wrapInvoker: (inner) => interceptInvoker(inner, (task, go) => (tasks.push(task), go())) },
    );
    await t.run(1);
    const maps = tasks.filter((task) => task.stage.kind === 'map');
    expect(maps).toHaveLength(8);
    for (const task of maps) {
      expect(task.splitCounts).toEqual({ 'queue-1': 8 });
      expect(Object.keys(task.splits['queue-1'])).toEqual([String(task.partition)]);
    }
    // Reducers read shuffle segments only.
    for (const task of tasks.filter((x) => x.stage.kind !== 'map')) expect(task.splits).toEqual({});
  });

  it(`a warm worker keeps at most ${STATE_CACHE_PARTITIONS} stateful partitions in memory (8)`, async () => {
    const n = STATE_CACHE_PARTITIONS + 16;
    const t = testCoordinator({ batchInterval: 1000 }, (ctx) =>
      ctx
        .queueStream([Array.from({ length: 400 }, (_, i) => i)])
        .map((x) => [x, 1] as [number, number])
        .updateStateByKey((vs: number[], s: number | undefined) => (s ?? 0) + vs.length, { numPartitions: n })
        .print(),
    );
    await t.run(2);
    expect(t.worker.stateCache.size).toBe(STATE_CACHE_PARTITIONS);
  });
});
