import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsMetaStore } from '../../lib/local/fsMetaStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import type { JsonValue, MetaStore } from '../../lib/ports/index.ts';

const fixtures: { readonly name: string; create(): Promise<{ store: MetaStore; dispose(): Promise<void> }> }[] = [
  {
    name: 'MemoryMetaStore',
    create: async () => ({ store: new MemoryMetaStore(), dispose: async () => {} }),
  },
  {
    name: 'FsMetaStore',
    create: async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-meta-'));
      return { store: new FsMetaStore(dir), dispose: () => fs.rm(dir, { recursive: true, force: true }) };
    },
  },
];

describe.each(fixtures)('MetaStore contract: $name', (fixture) => {
  let store: MetaStore;
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    ({ store, dispose } = await fixture.create());
  });

  afterEach(async () => {
    await dispose();
  });

  it('creates an item with expectedVersion 0', async () => {
    // Act
    const version = await store.put('checkpoint', { t: 1000 }, { expectedVersion: 0, epoch: 1 });

    // Assess
    expect(version).toBe(1);
    expect(await store.get('checkpoint')).toEqual({ key: 'checkpoint', version: 1, epoch: 1, value: { t: 1000 } });
  });

  it('refuses a second create of the same key', async () => {
    // Prepare
    await store.put('lease', { owner: 'a' }, { expectedVersion: 0, epoch: 1 });

    // Act
    const second = await store.put('lease', { owner: 'b' }, { expectedVersion: 0, epoch: 1 });

    // Assess
    expect(second).toBeUndefined();
    expect((await store.get('lease'))?.value).toEqual({ owner: 'a' });
  });

  it('returns undefined for a missing item', async () => {
    expect(await store.get('missing')).toBeUndefined();
  });

  it('updates an item given its current version', async () => {
    // Prepare
    await store.put('checkpoint', { t: 1000 }, { expectedVersion: 0, epoch: 1 });

    // Act
    const version = await store.put('checkpoint', { t: 2000 }, { expectedVersion: 1, epoch: 1 });

    // Assess
    expect(version).toBe(2);
    expect(await store.get('checkpoint')).toEqual({ key: 'checkpoint', version: 2, epoch: 1, value: { t: 2000 } });
  });

  it('refuses an update based on a stale version', async () => {
    // Prepare
    await store.put('checkpoint', { t: 1000 }, { expectedVersion: 0, epoch: 1 });
    await store.put('checkpoint', { t: 2000 }, { expectedVersion: 1, epoch: 1 });

    // Act
    const stale = await store.put('checkpoint', { t: 1500 }, { expectedVersion: 1, epoch: 1 });
    const fromTheFuture = await store.put('checkpoint', { t: 1500 }, { expectedVersion: 3, epoch: 1 });
    const onMissing = await store.put('other', 1, { expectedVersion: 1, epoch: 1 });

    // Assess
    expect(stale).toBeUndefined();
    expect(fromTheFuture).toBeUndefined();
    expect(onMissing).toBeUndefined();
    expect(await store.get('checkpoint')).toMatchObject({ version: 2, value: { t: 2000 } });
    expect(await store.get('other')).toBeUndefined();
  });

  it("writes whatever the version with expectedVersion 'any'", async () => {
    // Act
    const created = await store.put('k', 'first', { expectedVersion: 'any', epoch: 1 });
    const replaced = await store.put('k', 'second', { expectedVersion: 'any', epoch: 1 });

    // Assess
    expect([created, replaced]).toEqual([1, 2]);
    expect(await store.get('k')).toEqual({ key: 'k', version: 2, epoch: 1, value: 'second' });
  });

  it('fences a writer whose epoch is lower than the stored one', async () => {
    // Prepare: coordinator 2 took over from coordinator 1.
    await store.put('lease', { owner: 'c1' }, { expectedVersion: 0, epoch: 1 });
    await store.put('lease', { owner: 'c2' }, { expectedVersion: 1, epoch: 2 });

    // Act
    const zombie = await store.put('lease', { owner: 'c1' }, { expectedVersion: 2, epoch: 1 });
    const zombieAny = await store.put('lease', { owner: 'c1' }, { expectedVersion: 'any', epoch: 1 });
    const same = await store.put('lease', { owner: 'c2', renewed: true }, { expectedVersion: 2, epoch: 2 });
    const higher = await store.put('lease', { owner: 'c3' }, { expectedVersion: 3, epoch: 3 });

    // Assess
    expect(zombie).toBeUndefined();
    expect(zombieAny).toBeUndefined();
    expect(same).toBe(3);
    expect(higher).toBe(4);
    expect(await store.get('lease')).toEqual({ key: 'lease', version: 4, epoch: 3, value: { owner: 'c3' } });
  });

  it('deletes an item only for a writer that is not fenced', async () => {
    // Prepare
    await store.put('batch/1000', 'running', { expectedVersion: 0, epoch: 2 });

    // Act / Assess: a lower epoch leaves the item alone...
    await store.delete('batch/1000', { epoch: 1 });
    expect(await store.get('batch/1000')).toMatchObject({ version: 1, value: 'running' });

    // ...the same (or a higher) epoch deletes it, and deleting again is harmless.
    await store.delete('batch/1000', { epoch: 2 });
    expect(await store.get('batch/1000')).toBeUndefined();
    await store.delete('batch/1000', { epoch: 2 });
  });

  it('restarts at version 1 after a delete', async () => {
    // Prepare
    await store.put('k', 1, { expectedVersion: 0, epoch: 1 });
    await store.put('k', 2, { expectedVersion: 1, epoch: 1 });
    await store.delete('k', { epoch: 1 });

    // Act
    const version = await store.put('k', 3, { expectedVersion: 0, epoch: 1 });

    // Assess
    expect(version).toBe(1);
  });

  it('lists keys by prefix in lexicographic order', async () => {
    // Prepare: keys with characters that are special in file names, too.
    const keys = ['lineage/2000', 'lineage/1000', 'lease', 'lineage/10000', 'state ptr/a:b?c', 'älteste', '.hidden'];
    for (const key of keys) await store.put(key, key, { expectedVersion: 0, epoch: 1 });

    // Act / Assess
    expect(await store.list('')).toEqual([...keys].sort());
    expect(await store.list('lineage/')).toEqual(['lineage/1000', 'lineage/10000', 'lineage/2000']);
    expect(await store.list('le')).toEqual(['lease']);
    expect(await store.list('nothing')).toEqual([]);
    expect(await store.get('state ptr/a:b?c')).toMatchObject({ value: 'state ptr/a:b?c' });
  });

  it('keeps stored values apart from the caller’s objects', async () => {
    // Prepare
    const written: JsonValue = { shards: { s0: '42' }, parts: [1, 2] };
    await store.put('checkpoint', written, { expectedVersion: 0, epoch: 1 });

    // Act
    written.shards = 'changed by the writer';
    const read = await store.get<{ parts: number[] }>('checkpoint');
    read!.value.parts.push(3);

    // Assess
    expect((await store.get('checkpoint'))?.value).toEqual({ shards: { s0: '42' }, parts: [1, 2] });
  });
});

describe('FsMetaStore', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-meta-'));
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Adds one to the counter at `key`, retrying on conflict as a coordinator would. */
  async function increment(store: MetaStore, key: string): Promise<void> {
    for (;;) {
      const current = await store.get<number>(key);
      const written = await store.put(key, (current?.value ?? 0) + 1, { expectedVersion: current?.version ?? 0, epoch: 1 });
      if (written !== undefined) return;
    }
  }

  it('loses no update when 20 conditional writers race on one key', async () => {
    // Prepare: the writers go through four instances, so they contend on the lock file itself.
    const stores = [0, 1, 2, 3].map(() => new FsMetaStore(dir));
    await stores[0].put('counter', 0, { expectedVersion: 0, epoch: 1 });

    // Act
    await Promise.all(Array.from({ length: 20 }, (_, i) => increment(stores[i % stores.length], 'counter')));

    // Assess
    expect(await stores[0].get('counter')).toEqual({ key: 'counter', version: 21, epoch: 1, value: 20 });
  });

  it('loses no update when writers in separate processes race on one key', async () => {
    // Prepare
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const moduleUrl = pathToFileURL(path.join(root, 'lib/local/fsMetaStore.ts')).href;
    const script = `
      const { FsMetaStore } = await import(${JSON.stringify(moduleUrl)});
      const store = new FsMetaStore(${JSON.stringify(dir)});
      for (let i = 0; i < 15; i++) {
        for (;;) {
          const cur = await store.get('counter');
          const ok = await store.put('counter', (cur?.value ?? 0) + 1, { expectedVersion: cur?.version ?? 0, epoch: 1 });
          if (ok !== undefined) break;
        }
      }`;
    const run = promisify(execFile);

    // Act
    await Promise.all(
      [1, 2, 3].map(() => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root })),
    );

    // Assess
    expect(await new FsMetaStore(dir).get('counter')).toEqual({ key: 'counter', version: 45, epoch: 1, value: 45 });
  });

  it('shares its items with another instance on the same directory', async () => {
    // Prepare
    const writer = new FsMetaStore(dir);
    const reader = new FsMetaStore(dir);
    await writer.put('lineage/1000', { status: 'RUNNING' }, { expectedVersion: 0, epoch: 7 });

    // Act
    const seen = await reader.get('lineage/1000');
    const updated = await reader.put('lineage/1000', { status: 'COMPLETED' }, { expectedVersion: 1, epoch: 7 });

    // Assess
    expect(seen).toEqual({ key: 'lineage/1000', version: 1, epoch: 7, value: { status: 'RUNNING' } });
    expect(updated).toBe(2);
    expect(await writer.get('lineage/1000')).toMatchObject({ version: 2, value: { status: 'COMPLETED' } });
    expect(await reader.list('')).toEqual(['lineage/1000']);
  });

  it('breaks a lock left behind by a writer that died', async () => {
    // Prepare: a lock file last touched a minute ago.
    const lock = path.join(dir, `${encodeURIComponent('lease')}.lock`);
    await fs.writeFile(lock, '{"pid":0}');
    const aMinuteAgo = new Date(Date.now() - 60_000);
    await fs.utimes(lock, aMinuteAgo, aMinuteAgo);

    // Act
    const version = await new FsMetaStore(dir).put('lease', 'mine', { expectedVersion: 0, epoch: 1 });

    // Assess
    expect(version).toBe(1);
    expect(await fs.readdir(dir)).toEqual([`${encodeURIComponent('lease')}.json`]);
  });

  it('leaves only item files behind, and lists nothing in a directory that does not exist', async () => {
    // Prepare
    const store = new FsMetaStore(dir);
    await store.put('a/b', 1, { expectedVersion: 0, epoch: 1 });
    await store.put('a/b', 2, { expectedVersion: 1, epoch: 1 });

    // Act
    const files = await fs.readdir(dir);
    const none = await new FsMetaStore(path.join(dir, 'absent')).list('');

    // Assess
    expect(files).toEqual(['a%2Fb.json']);
    expect(none).toEqual([]);
  });
});
