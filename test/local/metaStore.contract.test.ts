import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsMetaStore } from '../../lib/local/fsMetaStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import type { MetaStore } from '../../lib/ports/index.ts';
import { describeMetaStoreContract, type MetaStoreFixture } from '../contracts/metaStoreContract.ts';

const fixtures: MetaStoreFixture[] = [
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

describeMetaStoreContract(fixtures);

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
