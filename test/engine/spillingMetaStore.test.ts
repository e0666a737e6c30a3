import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../lib/core/errors.ts';
import { DEFAULT_SPILL_THRESHOLD_BYTES, SpillingMetaStore } from '../../lib/engine/spillingMetaStore.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { checkBlobKey } from '../../lib/ports/blobKeys.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import type { BlobStore, JsonValue, MetaItem, MetaStore } from '../../lib/ports/index.ts';
import { describeMetaStoreContract } from '../contracts/metaStoreContract.ts';
import { batchRecordWith, jsonBytes, kinesisShapes } from '../helpers/metaShapes.ts';

/** A MetaStore that counts reads and can run something between a read and its answer (a racing writer). */
class ObservedMetaStore implements MetaStore {
  reads = 0;
  afterRead?: (item: MetaItem | undefined) => Promise<void>;
  constructor(readonly inner: MetaStore) {}
  async get<T extends JsonValue = JsonValue>(key: string): Promise<MetaItem<T> | undefined> {
    this.reads++;
    const item = await this.inner.get<T>(key);
    const hook = this.afterRead;
    this.afterRead = undefined;
    await hook?.(item);
    return item;
  }
  put(key: string, value: JsonValue, condition: { expectedVersion: number | 'any'; epoch: number }) {
    return this.inner.put(key, value, condition);
  }
  delete(key: string, condition: { epoch: number }) {
    return this.inner.delete(key, condition);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
}

/** A value whose JSON text is `bytes` long (near enough) and different for each `tag`. */
function big(tag: string, bytes = 100_000): JsonValue {
  return { tag, filler: 'x'.repeat(bytes) };
}

/** Fresh stores, and a SpillingMetaStore over them with a 1 KiB threshold. */
function setup(options: { thresholdBytes?: number; blobs?: BlobStore; warn?: (line: string) => void } = {}) {
  const meta = new ObservedMetaStore(new MemoryMetaStore());
  const blobs = options.blobs ?? new MemoryBlobStore();
  const store = new SpillingMetaStore(meta, blobs, { thresholdBytes: options.thresholdBytes ?? 1024, ...(options.warn ? { warn: options.warn } : {}) });
  return { meta, blobs, store };
}

const cond = (expectedVersion: number | 'any', epoch = 1) => ({ expectedVersion, epoch });

describeMetaStoreContract([
  {
    name: 'SpillingMetaStore, every value in a blob (threshold 0)',
    create: async () => ({ store: new SpillingMetaStore(new MemoryMetaStore(), new MemoryBlobStore(), { thresholdBytes: 0 }), dispose: async () => {} }),
  },
  {
    name: 'SpillingMetaStore, default threshold (every value inline)',
    create: async () => ({ store: new SpillingMetaStore(new MemoryMetaStore(), new MemoryBlobStore()), dispose: async () => {} }),
  },
]);

describe('SpillingMetaStore', () => {
  it('passes a value at or under the threshold straight through, with no blob, and spills one byte more', async () => {
    // Prepare
    const { meta, blobs, store } = setup({ thresholdBytes: 23 });
    const atThreshold = { owner: 'c-1', t: 100 }; // 23 bytes of JSON
    const over = { owner: 'c-12', t: 100 };

    // Act
    const version = await store.put('lease', atThreshold, cond(0));
    await store.put('other', over, cond(0));

    // Assess
    expect(jsonBytes(atThreshold)).toBe(23);
    expect(version).toBe(1);
    expect(await meta.inner.get('lease')).toEqual({ key: 'lease', version: 1, epoch: 1, value: atThreshold });
    expect(await blobs.list('')).toEqual([expect.stringMatching(/^meta\/other\/e1-[0-9a-f]{64}\.json$/)]);
    expect((await store.get('other'))?.value).toEqual(over);
    expect(DEFAULT_SPILL_THRESHOLD_BYTES).toBe(65_536);
  });

  it('round-trips a large value exactly through a blob named by key, epoch and SHA-256, and keeps a small pointer in the item', async () => {
    // Prepare: a Kinesis batch record of 2,000 shards, half of them idle (about 1 MB of JSON).
    const { meta, blobs, store } = setup({ thresholdBytes: DEFAULT_SPILL_THRESHOLD_BYTES });
    const record = batchRecordWith('kinesis-0', kinesisShapes(2000, 1000));

    // Act
    const version = await store.put('batch/001767225600000', record, cond(0, 7));
    const read = await store.get('batch/001767225600000');

    // Assess
    expect(version).toBe(1);
    expect(read).toEqual({ key: 'batch/001767225600000', version: 1, epoch: 7, value: record });
    const [blob] = await blobs.list('');
    expect(blob).toMatch(/^meta\/batch\/001767225600000\/e7-[0-9a-f]{64}\.json$/);
    const pointer = (await meta.inner.get('batch/001767225600000'))!.value as Record<string, JsonValue>;
    expect(pointer).toEqual({ $spilled: blob, bytes: jsonBytes(record), sha256: blob.slice(-69, -5) });
    expect(jsonBytes(pointer)).toBeLessThan(256);
    expect(new TextDecoder().decode(await blobs.get(blob))).toBe(JSON.stringify(record));
  });

  it('keeps the conditional-write answers: a failed version or epoch condition writes no item and returns undefined', async () => {
    // Prepare: coordinator 2 (epoch 2) wrote version 2 over coordinator 1's version 1.
    const { meta, store } = setup();
    expect(await store.put('checkpoint', big('v1'), cond(0, 1))).toBe(1);
    expect(await store.put('checkpoint', big('v2'), cond(1, 2))).toBe(2);

    // Act
    const results = await Promise.all([
      store.put('checkpoint', big('stale'), cond(1, 2)),
      store.put('checkpoint', big('create'), cond(0, 2)),
      store.put('checkpoint', big('zombie'), cond(2, 1)),
      store.put('checkpoint', big('zombie any'), cond('any', 1)),
      store.put('other', big('missing'), cond(3, 1)),
    ]);

    // Assess
    expect(results).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(await store.get('checkpoint')).toEqual({ key: 'checkpoint', version: 2, epoch: 2, value: big('v2') });
    expect(await meta.inner.get('other')).toBeUndefined();
    expect(await store.put('checkpoint', big('v3'), cond(2, 2))).toBe(3);
    expect(await store.put('checkpoint', big('v4'), cond('any', 3))).toBe(4);
  });

  it('writes nothing to the MetaStore when the blob cannot be written', async () => {
    // Prepare
    const failing = new MemoryBlobStore();
    failing.put = async () => {
      throw new Error('S3 is down');
    };
    const { meta, store } = setup({ blobs: failing });

    // Act / Assess
    await expect(store.put('checkpoint', big('v1'), cond(0))).rejects.toThrow('S3 is down');
    expect(await meta.inner.get('checkpoint')).toBeUndefined();
    expect(await store.put('checkpoint', { small: true }, cond(0))).toBe(1);
  });

  it('keeps the blobs of the last two versions and deletes older ones; a value back under the threshold frees both', async () => {
    // Prepare
    const { blobs, store } = setup();
    const names: string[] = [];
    const put = async (value: JsonValue, expectedVersion: number) => {
      const before = new Set(await blobs.list(''));
      expect(await store.put('checkpoint', value, cond(expectedVersion))).toBe(expectedVersion + 1);
      names.push(...(await blobs.list('')).filter((b) => !before.has(b)));
    };

    // Act / Assess: A, B, C spill; C again names the same blob; D is small.
    await put(big('A'), 0);
    expect(await blobs.list('')).toEqual([names[0]]);
    await put(big('B'), 1);
    expect(await blobs.list('')).toEqual([names[0], names[1]].sort());
    await put(big('C'), 2);
    expect(await blobs.list('')).toEqual([names[1], names[2]].sort()); // A went with the put of C
    await put(big('C'), 3);
    expect(names).toHaveLength(3); // the same content in the same epoch is the same blob...
    expect(await blobs.list('')).toEqual([names[1], names[2]].sort()); // ...and B is still the one before it
    await put({ small: 'D' }, 4);
    expect(await blobs.list('')).toEqual([]);
    expect((await store.get('checkpoint'))?.value).toEqual({ small: 'D' });
  });

  it('deletes nothing when it never saw the version it replaced (another instance wrote it)', async () => {
    // Prepare: one instance wrote A and B; a second one, which has not read the key, replaces B.
    const { meta, blobs, store } = setup();
    await store.put('checkpoint', big('A'), cond(0));
    await store.put('checkpoint', big('B'), cond(1));
    const other = new SpillingMetaStore(meta, blobs, { thresholdBytes: 1024 });

    // Act
    await other.put('checkpoint', big('C'), cond(2));

    // Assess: A, B and C are all left (storage only; delete() of a batch record takes its last two).
    expect(await blobs.list('')).toHaveLength(3);
    // Once it has read the key, the other instance collects as usual, from C on: A and B stay.
    await other.get('checkpoint');
    await other.put('checkpoint', big('D'), cond(3));
    await other.put('checkpoint', big('E'), cond(4));
    expect(await blobs.list('')).toHaveLength(4);
  });

  it('reads the item again when a replacement collected the blob between its two reads', async () => {
    // Prepare: a reader and a writer on the same stores; the writer replaces the value twice while
    // the reader is between the item and the blob, so the blob the reader was sent to is deleted.
    const { meta, blobs, store: writer } = setup();
    await writer.put('checkpoint', big('v1'), cond(0));
    const reader = new SpillingMetaStore(meta, blobs, { thresholdBytes: 1024 });
    meta.afterRead = async () => {
      await writer.put('checkpoint', big('v2'), cond(1));
      await writer.put('checkpoint', big('v3'), cond(2));
    };
    const v1Blob = ((await meta.inner.get('checkpoint'))!.value as { $spilled: string }).$spilled;
    meta.reads = 0;

    // Act
    const read = await reader.get('checkpoint');

    // Assess
    expect(read).toEqual({ key: 'checkpoint', version: 3, epoch: 1, value: big('v3') });
    expect(meta.reads).toBe(2);
    expect(await blobs.exists(v1Blob)).toBe(false);
  });

  it('says which key and blob are missing, and what to do, when the item still points at a missing blob', async () => {
    // Prepare: someone deleted the blob behind the store's back.
    const { meta, blobs, store } = setup();
    await store.put('batch/000000000002000', big('v1'), cond(0));
    const [blob] = await blobs.list('');
    await blobs.delete([blob]);
    meta.reads = 0;

    // Act
    const error = await store.get('batch/000000000002000').then(
      () => undefined,
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).message).toBe(
      `meta item batch/000000000002000 (version 1) is stored in blob ${blob}, which is missing: the item still points there after 4 reads. ` +
        'The blob was deleted outside Sluice (a lifecycle rule or a manual delete on the state store\'s meta/ prefix) or lost. ' +
        'Restore the object if the bucket keeps old versions; otherwise delete the item batch/000000000002000 so the job rebuilds it (a batch record is cut again; without a checkpoint the job starts afresh).',
    );
    expect((error as SluiceError).batchTime).toBe(2000);
    expect(meta.reads).toBe(4);
  });

  it('refuses a blob whose content does not match its pointer', async () => {
    // Prepare
    const { blobs, store } = setup();
    await store.put('checkpoint', big('v1'), cond(0));
    const [blob] = await blobs.list('');
    await blobs.put(blob, JSON.stringify(big('v2')));

    // Act / Assess
    await expect(store.get('checkpoint')).rejects.toThrow(`meta item checkpoint is stored in blob ${blob}, whose content does not match the item`);
  });

  it('deletes the item and then its blobs, by any instance, but not when the delete is fenced', async () => {
    // Prepare: three keys with two blobs each.
    const { meta, blobs, store } = setup();
    for (const key of ['batch/000000000001000', 'batch/000000000002000', 'batch/000000000003000']) {
      await store.put(key, big(`${key} 1`), cond(0, 2));
      await store.put(key, big(`${key} 2`), cond(1, 2));
    }
    const fresh = new SpillingMetaStore(meta, blobs);

    // Act: this instance deletes the first; a fresh one (that never read it) the second; a fenced
    // coordinator (epoch 1) tries the third.
    await store.delete('batch/000000000001000', { epoch: 2 });
    await fresh.delete('batch/000000000002000', { epoch: 2 });
    await store.delete('batch/000000000003000', { epoch: 1 });

    // Assess
    expect(await store.list('batch/')).toEqual(['batch/000000000003000']);
    expect(await blobs.list('meta/batch/000000000001000/')).toEqual([]);
    expect(await blobs.list('meta/batch/000000000002000/')).toEqual([]);
    expect(await blobs.list('meta/batch/000000000003000/')).toHaveLength(2);
    expect((await store.get('batch/000000000003000'))?.value).toEqual(big('batch/000000000003000 2'));
  });

  it('reports a failed clean-up and still returns the version the put wrote', async () => {
    // Prepare
    const lines: string[] = [];
    const blobs = new MemoryBlobStore();
    const { store } = setup({ blobs, warn: (line) => lines.push(line) });
    await store.put('checkpoint', big('A'), cond(0));
    await store.put('checkpoint', big('B'), cond(1));
    blobs.delete = async () => {
      throw new Error('AccessDenied');
    };

    // Act
    const version = await store.put('checkpoint', big('C'), cond(2));

    // Assess
    expect(version).toBe(3);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^meta item checkpoint: could not delete its old spill blob\(s\) meta\/checkpoint\/e1-[0-9a-f]{64}\.json after a put of version 3; they are left behind \(storage only\): AccessDenied$/);
  });

  it('stores a small value shaped like a pointer in a blob, so it never reads as one', async () => {
    // Prepare
    const { blobs, store } = setup();
    const lookalike = { $spilled: 'meta/checkpoint/e1-0.json', bytes: 3, sha256: '0' };

    // Act
    await store.put('k', lookalike, cond(0));

    // Assess
    expect((await store.get('k'))?.value).toEqual(lookalike);
    expect(await blobs.list('')).toHaveLength(1);
  });

  it('names blobs every blob store accepts, whatever the item key', async () => {
    // Prepare
    const { blobs, store } = setup({ thresholdBytes: 0 });
    const keys = ['', '/abs', 'a//b', '.', '..', 'a/./b', 'a/../b', 'back\\slash', 'nul\0', '%', '%2E', 'state ptr/a:b?c', 'älteste', 'trailing/'];

    // Act
    for (const key of keys) await store.put(key, key, cond(0));

    // Assess: every key reads back, and no two keys share a folder of blobs.
    for (const key of keys) expect((await store.get(key))?.value).toBe(key);
    const names = await blobs.list('');
    for (const name of names) checkBlobKey(name);
    expect(new Set(names.map((n) => n.slice(0, n.lastIndexOf('/')))).size).toBe(keys.length);
  });

  it('refuses a threshold that is not a whole number of bytes', () => {
    expect(() => new SpillingMetaStore(new MemoryMetaStore(), new MemoryBlobStore(), { thresholdBytes: -1 })).toThrow(
      'SpillingMetaStore: thresholdBytes must be a whole number >= 0, got -1',
    );
    expect(() => new SpillingMetaStore(new MemoryMetaStore(), new MemoryBlobStore(), { thresholdBytes: 1.5 })).toThrow(SluiceError);
  });
});
