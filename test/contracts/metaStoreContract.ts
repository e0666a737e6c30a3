import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JsonValue, MetaStore } from '../../lib/ports/index.ts';

/** One implementation under test: how to make a fresh, empty store and how to clean up after it. */
export interface MetaStoreFixture {
  readonly name: string;
  /** A store that holds no items and shares none with any other store this fixture made. */
  create(): Promise<{ store: MetaStore; dispose(): Promise<void> }>;
}

/**
 * The {@link MetaStore} port's contract, as one `describe` block per fixture. Every adapter
 * (memory, file system, DynamoDB) must pass it unchanged.
 *
 * @example
 * ```ts
 * describeMetaStoreContract([{ name: 'MemoryMetaStore', create: async () => ({ store: new MemoryMetaStore(), dispose: async () => {} }) }]);
 * ```
 */
export function describeMetaStoreContract(fixtures: readonly MetaStoreFixture[]): void {
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
}
