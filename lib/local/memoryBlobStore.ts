import { bodyBytes, checkBlobKey, checkByteRange } from '../ports/blobKeys.ts';
import type { BlobStore } from '../ports/index.ts';

/**
 * A {@link BlobStore} in memory, for tests and single-process runs that need no durability.
 * Bytes are copied on the way in and out, so neither the writer nor a reader can change what is
 * stored (the engine relies on blobs being immutable).
 *
 * @example
 * ```ts
 * const blobs = new MemoryBlobStore();
 * await blobs.put('out/part-0', 'hello');
 * new TextDecoder().decode(await blobs.get('out/part-0')); // 'hello'
 * ```
 */
export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<string, Uint8Array>();

  async put(key: string, body: Uint8Array | string): Promise<void> {
    checkBlobKey(key);
    this.#blobs.set(key, bodyBytes(body));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkBlobKey(key);
    const stored = this.#blobs.get(key);
    return stored === undefined ? undefined : stored.slice();
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array | undefined> {
    checkBlobKey(key);
    checkByteRange(key, start, end);
    const stored = this.#blobs.get(key);
    if (stored === undefined) return undefined;
    return stored.slice(Math.min(start, stored.length), Math.min(end, stored.length));
  }

  async exists(key: string): Promise<boolean> {
    checkBlobKey(key);
    return this.#blobs.has(key);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) checkBlobKey(key);
    for (const key of keys) this.#blobs.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for (const key of this.#blobs.keys()) if (key.startsWith(prefix)) keys.push(key);
    return keys.sort();
  }

  /**
   * How many blobs the store holds, listed or not: what it costs in memory.
   *
   * @example
   * ```ts
   * const blobs = new MemoryBlobStore();
   * await blobs.put('a', 'x');
   * blobs.size; // 1
   * ```
   */
  get size(): number {
    return this.#blobs.size;
  }
}
