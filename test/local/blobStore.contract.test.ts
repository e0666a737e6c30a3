import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../lib/local/fsBlobStore.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { type BlobStoreFixture, describeBlobStoreContract } from '../contracts/blobStoreContract.ts';

const fixtures: BlobStoreFixture[] = [
  {
    name: 'MemoryBlobStore',
    atomicPuts: true,
    create: async () => {
      const store = new MemoryBlobStore();
      // Bare: no blob held at all, listed or not.
      return { store, isBare: async () => store.size === 0, dispose: async () => {} };
    },
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

describeBlobStoreContract(fixtures);

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
