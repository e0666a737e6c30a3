import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { keys, type BatchRecord } from '../../lib/engine/protocol.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import type { SinkResolver } from '../../lib/ports/index.ts';
import { describeEmptyBatches, type SinkFixture } from '../contracts/emptyBatchesContract.ts';
import { testCoordinator } from '../helpers/engine.ts';

/** The local runtime's sinks (files under a temporary directory), noting each object put as `<directory>/<name>`. */
const localFiles: SinkFixture = {
  name: 'the local file system',
  create: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-empty-'));
    const inner = localSinks(dir);
    const puts: string[] = [];
    const sinks: SinkResolver = (location) => {
      const { store, key } = inner(location);
      const put: typeof store.put = (k, body) => {
        puts.push(join(dirname(location), k));
        return store.put(k, body);
      };
      return { key, store: { put, get: (k) => store.get(k), getRange: (k, a, b) => store.getRange(k, a, b), exists: (k) => store.exists(k), delete: (k) => store.delete(k), list: (p) => store.list(p) } };
    };
    return {
      sinks,
      location: (name) => join(dir, 'out', name),
      putsUnder: (location) => puts.filter((p) => dirname(p) === location).map((p) => relative(location, p)),
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  },
};

describeEmptyBatches([localFiles]);

describe('empty batches: the batch record', () => {
  it('says whether the batch writes an empty output, as the job said when the batch was cut', async () => {
    const meta = new MemoryMetaStore();
    const t = testCoordinator({ batchInterval: 1000, writeEmptyBatches: true }, (ctx) => ctx.queueStream([[1]]).saveAsTextFiles('unused'), { meta, sinks: () => ({ store: new MemoryBlobStore(), key: 'k' }) });
    await t.run(1);
    expect((await meta.get<BatchRecord>(keys.batch(1000)))!.value.writeEmptyBatches).toBe(true);
  });

  it("a record written before the option existed is read as the releases that wrote it behaved: Spark's empty parts and _SUCCESS", async () => {
    // Prepare: a coordinator cuts batch 1000 (empty) and stops; its record then loses the field, as an older release wrote it.
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const sink = new MemoryBlobStore();
    const sinks: SinkResolver = (location) => ({ store: sink, key: location });
    const job = (ctx: StreamingContext) => ctx.queueStream<string>([[]], { numPartitions: 2 }).saveAsTextFiles('out/w');
    const first = testCoordinator({ batchInterval: 1000 }, job, {
      meta,
      blobs,
      sinks,
      onStep: (step) => {
        if (step === 'lease') throw new Error('stopped after the cut');
      },
    });
    await expect(first.run(1)).rejects.toThrow('stopped after the cut');
    await first.coordinator.releaseLease();
    const item = (await meta.get<BatchRecord>(keys.batch(1000)))!;
    const { writeEmptyBatches, ...older } = item.value;
    expect(writeEmptyBatches).toBe(false);
    expect(await meta.put(keys.batch(1000), older, { expectedVersion: item.version, epoch: item.epoch })).toBeDefined();

    // Act
    const second = testCoordinator({ batchInterval: 1000 }, job, { meta, blobs, sinks });
    await second.run(2);

    // Assess: the recovered batch writes the layout an older release would have; the next batch, cut now, writes nothing.
    expect(await sink.list('out/')).toEqual(['out/w-1000/_SUCCESS', 'out/w-1000/part-00000', 'out/w-1000/part-00001']);
  });
});
