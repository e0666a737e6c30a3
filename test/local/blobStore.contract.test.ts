import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../../lib/api/errors.ts';
import { FsBlobStore } from '../../lib/local/fsBlobStore.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import type { BlobStore } from '../../lib/ports/index.ts';

/** A fresh, empty store, and what a test needs to know of its insides. */
interface Subject {
  readonly store: BlobStore;
  /** Leaves what a put that died halfway leaves under `dirKey` (nothing, for a memory store). */
  leaveHalfWrittenObject(dirKey: string): Promise<void>;
  /** Whether nothing at all is left behind (no directories, for a filesystem store). */
  isBare(): Promise<boolean>;
  dispose(): Promise<void>;
}

const fixtures: { readonly name: string; create(): Promise<Subject> }[] = [
  {
    name: 'MemoryBlobStore',
    create: async () => ({
      store: new MemoryBlobStore(),
      leaveHalfWrittenObject: async () => {},
      isBare: async () => true,
      dispose: async () => {},
    }),
  },
  {
    name: 'FsBlobStore',
    create: async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-blobs-'));
      return {
        store: new FsBlobStore(dir),
        leaveHalfWrittenObject: async (dirKey) => {
          await fs.mkdir(path.join(dir, dirKey), { recursive: true });
          await fs.writeFile(path.join(dir, dirKey, '.tmp-0123456789abcdef'), 'half');
        },
        // Only the store's own staging directory for writes in progress may remain, and it is empty.
        isBare: async () => {
          const left = await fs.readdir(dir);
          return left.every((n) => n === '.tmp-writes') && (left.length === 0 || (await fs.readdir(path.join(dir, '.tmp-writes'))).length === 0);
        },
        dispose: () => fs.rm(dir, { recursive: true, force: true }),
      };
    },
  },
];

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

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

  it('never lists an object whose write is still in flight', async () => {
    // Prepare
    await store.put('dir/done', 'x');
    await subject.leaveHalfWrittenObject('dir');
    await subject.leaveHalfWrittenObject('dir/sub');

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

describe('FsBlobStore staging', () => {
  it('stages writes outside the key directories, so an output directory holds only its objects', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-staging-'));
    try {
      const store = new FsBlobStore(dir);
      await store.put('counts-1000/part-00000', 'a\n');
      await store.put('counts-1000/_SUCCESS', '');
      expect((await fs.readdir(path.join(dir, 'counts-1000'))).sort()).toEqual(['_SUCCESS', 'part-00000']);
      // Idle, the store leaves no staging directory behind either.
      expect(await fs.readdir(dir)).toEqual(['counts-1000']);
      expect(await store.list('')).toEqual(['counts-1000/_SUCCESS', 'counts-1000/part-00000']);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('sweeps staged files that a crashed writer left long ago', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-staging-'));
    try {
      const staging = path.join(dir, '.tmp-writes');
      await fs.mkdir(staging);
      await fs.writeFile(path.join(staging, '.tmp-old'), 'half');
      await fs.writeFile(path.join(staging, '.tmp-recent'), 'half');
      const hourAgo = new Date(Date.now() - 3_600_000);
      await fs.utimes(path.join(staging, '.tmp-old'), hourAgo, hourAgo);
      await new FsBlobStore(dir).put('k', 'v');
      expect(await fs.readdir(staging)).toEqual(['.tmp-recent']);
      expect((await fs.readdir(dir)).sort()).toEqual(['.tmp-writes', 'k']);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
