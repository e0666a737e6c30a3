import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../../lib/core/errors.ts';
import type { BlobStore } from '../../lib/ports/index.ts';

/**
 * The BlobStore contract: what every store (memory, file system, S3) must do alike, so that a job
 * behaves the same whichever adapter runs it. Each store's test file calls
 * {@link describeBlobStoreContract} with fixtures that make fresh, empty stores.
 */

/** A fresh, empty store, and what a test needs to know of its insides. */
export interface Subject {
  readonly store: BlobStore;
  /** Leaves what a put that died halfway leaves under `dirKey` (absent when the fixture says `atomicPuts`). */
  readonly leaveHalfWrittenObject?: (dirKey: string) => Promise<void>;
  /** Whether nothing at all is left behind, seen from inside the store (no directories, for a filesystem store). */
  isBare(): Promise<boolean>;
  dispose(): Promise<void>;
}

/** How to make a {@link Subject}, and the name its tests run under. */
export interface BlobStoreFixture {
  readonly name: string;
  /**
   * The store's put cannot be seen halfway (the memory store's is one `Map.set`): there is no
   * half-written object to leave, and the test of one is not declared for it.
   */
  readonly atomicPuts?: true;
  create(): Promise<Subject>;
}

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

/**
 * Declares the contract tests once per fixture.
 *
 * @example
 * ```ts
 * describeBlobStoreContract([{ name: 'MemoryBlobStore', create: async () => ({ store: new MemoryBlobStore(), ... }) }]);
 * ```
 */
export function describeBlobStoreContract(fixtures: readonly BlobStoreFixture[]): void {
  describe.each(fixtures)('BlobStore contract: $name', (fixture) => {
    let subject: Subject;
    let store: BlobStore;

    beforeEach(async () => {
      subject = await fixture.create();
      store = subject.store;
    });

    afterEach(async () => {
      await subject.dispose();
    });

    it('returns the bytes that were put', async () => {
      // Prepare
      const bytes = new Uint8Array([0, 1, 2, 254, 255]);

      // Act
      await store.put('shuffle/1000/m0', bytes);

      // Assess
      expect(await store.get('shuffle/1000/m0')).toEqual(bytes);
    });

    it('stores strings as UTF-8', async () => {
      // Act
      await store.put('out/part-0', 'grüße 🌊');

      // Assess
      const stored = await store.get('out/part-0');
      expect(stored).toEqual(new TextEncoder().encode('grüße 🌊'));
      expect(text(stored)).toBe('grüße 🌊');
    });

    it('replaces the whole object on a second put', async () => {
      // Prepare
      await store.put('k', 'a much longer first version');

      // Act
      await store.put('k', 'short');

      // Assess
      expect(text(await store.get('k'))).toBe('short');
    });

    it('returns undefined for a key that was never put', async () => {
      expect(await store.get('nothing/here')).toBeUndefined();
    });

    it('returns bytes [start, end) from getRange', async () => {
      // Prepare
      await store.put('blob', '0123456789');

      // Act
      const middle = await store.getRange('blob', 2, 5);

      // Assess
      expect(text(middle)).toBe('234');
    });

    it('clips a range that ends past the object', async () => {
      // Prepare
      await store.put('blob', '0123456789');

      // Act
      const tail = await store.getRange('blob', 7, 100);
      const beyond = await store.getRange('blob', 20, 30);

      // Assess
      expect(text(tail)).toBe('789');
      expect(beyond).toEqual(new Uint8Array(0));
    });

    it('returns undefined from getRange for a missing key', async () => {
      expect(await store.getRange('missing', 0, 10)).toBeUndefined();
    });

    it('reads single bytes at either end of an object', async () => {
      // Prepare
      await store.put('blob', '0123456789');

      // Act / Assess
      expect(text(await store.getRange('blob', 0, 1))).toBe('0');
      expect(text(await store.getRange('blob', 9, 10))).toBe('9');
    });

    it('reads to the end of the object when end is Infinity', async () => {
      // Prepare
      await store.put('blob', '0123456789');

      // Act / Assess
      expect(text(await store.getRange('blob', 0, Number.POSITIVE_INFINITY))).toBe('0123456789');
      expect(text(await store.getRange('blob', 3, Number.POSITIVE_INFINITY))).toBe('3456789');
      expect(await store.getRange('blob', 10, Number.POSITIVE_INFINITY)).toEqual(new Uint8Array(0));
      expect(await store.getRange('blob', 50, Number.POSITIVE_INFINITY)).toEqual(new Uint8Array(0));
    });

    it('returns an empty range as no bytes, and still undefined for a missing key', async () => {
      // Prepare
      await store.put('blob', '0123456789');

      // Act / Assess
      expect(await store.getRange('blob', 4, 4)).toEqual(new Uint8Array(0));
      expect(await store.getRange('blob', 0, 0)).toEqual(new Uint8Array(0));
      expect(await store.getRange('missing', 4, 4)).toBeUndefined();
    });

    it('stores, reads and lists an empty object', async () => {
      // Act
      await store.put('empty', '');

      // Assess
      expect(await store.get('empty')).toEqual(new Uint8Array(0));
      expect(await store.exists('empty')).toBe(true);
      expect(await store.getRange('empty', 0, 5)).toEqual(new Uint8Array(0));
      expect(await store.getRange('empty', 0, Number.POSITIVE_INFINITY)).toEqual(new Uint8Array(0));
      expect(await store.list('')).toEqual(['empty']);
    });

    it('rejects a negative or inverted range', async () => {
      // Prepare
      await store.put('blob', '0123456789');

      // Act / Assess
      await expect(store.getRange('blob', -1, 3)).rejects.toThrow(SluiceError);
      await expect(store.getRange('blob', 5, 2)).rejects.toThrow(SluiceError);
    });

    it('tells whether a key exists', async () => {
      // Prepare
      await store.put('a/b', 'x');

      // Act / Assess
      expect(await store.exists('a/b')).toBe(true);
      expect(await store.exists('a/c')).toBe(false);
      expect(await store.exists('a')).toBe(false); // a "directory" of keys is not a key
    });

    it('deletes existing keys and ignores missing ones', async () => {
      // Prepare
      await store.put('s/1', 'one');
      await store.put('s/2', 'two');

      // Act
      await store.delete(['s/1', 'never/was']);

      // Assess
      expect(await store.exists('s/1')).toBe(false);
      expect(await store.get('s/2')).toBeDefined();
      expect(await store.list('')).toEqual(['s/2']);
    });

    it('leaves nothing behind once every key is deleted', async () => {
      // Prepare
      await store.put('job/state/p0/1000', 'x');
      await store.put('job/state/p1/1000', 'y');

      // Act
      await store.delete(['job/state/p0/1000', 'job/state/p1/1000']);

      // Assess
      expect(await store.list('')).toEqual([]);
      expect(await subject.isBare()).toBe(true);
    });

    it('lets a deleted prefix be written again', async () => {
      // Prepare
      await store.put('deep/er/key', 'x');
      await store.delete(['deep/er/key']);

      // Act
      await store.put('deep/er/key', 'y');

      // Assess
      expect(text(await store.get('deep/er/key'))).toBe('y');
    });

    it('lists the keys under a prefix in lexicographic order', async () => {
      // Prepare
      const keys = ['state/b/2000', 'state/a/1000', 'shuffle/1000/m1', 'shuffle/1000/m0', 'shuffle/10000/m0', 'top'];
      for (const key of keys.toReversed()) await store.put(key, key);

      // Act / Assess
      expect(await store.list('')).toEqual([...keys].sort());
      expect(await store.list('shuffle/1000/')).toEqual(['shuffle/1000/m0', 'shuffle/1000/m1']);
      expect(await store.list('shuffle/1000')).toEqual(['shuffle/1000/m0', 'shuffle/1000/m1', 'shuffle/10000/m0']);
      expect(await store.list('s')).toEqual(['shuffle/1000/m0', 'shuffle/1000/m1', 'shuffle/10000/m0', 'state/a/1000', 'state/b/2000']);
      expect(await store.list('state/a/1000')).toEqual(['state/a/1000']);
      expect(await store.list('nope/')).toEqual([]);
    });

    it('lists nothing for a prefix that no valid key can start with', async () => {
      // Prepare
      await store.put('a/b', 'x');

      // Act / Assess
      expect(await store.list('../')).toEqual([]);
      expect(await store.list('/a')).toEqual([]);
      expect(await store.list('a//')).toEqual([]);
    });

    if (!fixture.atomicPuts)
      it('never lists an object whose write is still in flight', async () => {
        // Prepare
        await store.put('dir/done', 'x');
        await subject.leaveHalfWrittenObject!('dir');
        await subject.leaveHalfWrittenObject!('dir/sub');

        // Act
        const keys = await store.list('dir/');
        const all = await store.list('');

        // Assess
        expect(keys).toEqual(['dir/done']);
        expect(all).toEqual(['dir/done']);
      });

    it.each([
      ['empty', ''],
      ['absolute', '/etc/passwd'],
      ['escaping with ..', 'a/../../b'],
      ['a bare ..', '..'],
      ['with a backslash', 'a\\b'],
      ['with NUL', 'a\0b'],
      ['with an empty segment', 'a//b'],
      ['ending in /', 'a/'],
      ['a reserved temporary name', 'a/.tmp-123'],
    ])('rejects a key that is %s, naming it', async (_what, key) => {
      // Act / Assess
      for (const attempt of [
        () => store.put(key, 'x'),
        () => store.get(key),
        () => store.getRange(key, 0, 1),
        () => store.exists(key),
        () => store.delete([key]),
      ]) {
        await expect(attempt()).rejects.toThrow(SluiceError);
        await expect(attempt()).rejects.toThrow(JSON.stringify(key));
      }
    });

    it('keeps stored bytes apart from the caller’s arrays', async () => {
      // Prepare
      const written = new Uint8Array([1, 2, 3]);
      await store.put('k', written);

      // Act
      written[0] = 99;
      const read = await store.get('k');
      read![1] = 99;
      const range = await store.getRange('k', 0, 3);
      range![2] = 99;

      // Assess
      expect(await store.get('k')).toEqual(new Uint8Array([1, 2, 3]));
    });
  });
}
