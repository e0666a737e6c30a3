import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SluiceError } from '../core/errors.ts';
import type { BlobStore } from '../ports/index.ts';
import { checkBlobKey, checkByteRange, isValidBlobKey } from '../ports/blobKeys.ts';

const TEMP_PREFIX = '.tmp-';
/**
 * Where writes are staged before the rename: one directory at the store's root, so a write cut
 * short by a crash never leaves a stray file inside an output directory (readers of a batch's
 * directory see its parts and `_SUCCESS`, nothing else). Its name starts with TEMP_PREFIX, so
 * listings skip it. Left-overs older than STALE_TEMP_MS are swept at the first write.
 */
const STAGING_DIR = `${TEMP_PREFIX}writes`;
const STALE_TEMP_MS = 10 * 60_000;

/** How often `put` retries when a concurrent `delete` pruned the directory it had just created. */
const PUT_ATTEMPTS = 10;

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

/** Errors that mean "there is no object under this key": the key names nothing, or a directory. */
function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

/**
 * A {@link BlobStore} on a local directory: key `a/b/c` is the file `<rootDir>/a/b/c`.
 *
 * Writes go to a temporary file that is renamed into place, so a reader sees either the old or
 * the new object, never a partial one, even if the writing process dies. (No fsync: that makes
 * writes atomic against process crashes, which is what local mode needs, not against power loss.)
 * Like S3 keys, keys are flat names, except that a key cannot also be the "directory" of another
 * (`a` and `a/b` cannot both exist).
 *
 * @example
 * ```ts
 * const blobs = new FsBlobStore('.sluice/wordcount/blobs');
 * await blobs.put('shuffle/1000/m0', bytes);
 * await blobs.list('shuffle/1000/'); // ['shuffle/1000/m0']
 * ```
 */
export class FsBlobStore implements BlobStore {
  readonly #root: string;
  readonly #rootWithSep: string;
  #staging: Promise<string> | undefined;
  #writing = 0;

  constructor(rootDir: string) {
    this.#root = path.resolve(rootDir);
    this.#rootWithSep = this.#root.endsWith(path.sep) ? this.#root : this.#root + path.sep;
  }

  #pathOf(key: string): string {
    checkBlobKey(key);
    return path.join(this.#root, ...key.split('/'));
  }

  /**
   * The staging directory, swept of stale left-overs on first use. Creating it is left to each
   * write (a concurrent delete elsewhere may prune it at any time), and a failed sweep is ignored:
   * it must never make later writes fail.
   */
  #stagingDir(): Promise<string> {
    const dir = path.join(this.#root, STAGING_DIR);
    this.#staging ??= (async () => {
      const now = Date.now();
      for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
        const file = path.join(dir, name);
        const st = await fs.stat(file).catch(() => undefined);
        if (st && now - st.mtimeMs > STALE_TEMP_MS) await fs.rm(file, { force: true }).catch(() => {});
      }
      return dir;
    })().catch(() => dir);
    return this.#staging;
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const file = this.#pathOf(key);
    const dir = path.dirname(file);
    const staging = await this.#stagingDir();
    this.#writing++;
    try {
      await this.#putVia(staging, key, file, dir, body);
    } finally {
      // An idle store leaves no staging directory behind (outputs stay clean); a writer in another
      // thread that loses it to this rmdir meets ENOENT and makes it again.
      if (--this.#writing === 0) await fs.rmdir(staging).catch(() => {});
    }
  }

  async #putVia(staging: string, key: string, file: string, dir: string, body: Uint8Array | string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const temp = path.join(staging, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
      try {
        // The staging directory may have been removed under us (a test deleting the whole root).
        await fs.mkdir(staging, { recursive: true });
        await fs.mkdir(dir, { recursive: true });
        await fs.writeFile(temp, body);
        await fs.rename(temp, file);
        return;
      } catch (error) {
        await fs.rm(temp, { force: true }).catch(() => {});
        // A concurrent delete may remove the directory between mkdir and writeFile: make it again.
        if (errorCode(error) === 'ENOENT' && attempt < PUT_ATTEMPTS) continue;
        throw new SluiceError(`cannot write blob ${JSON.stringify(key)} to ${file}`, { cause: error });
      }
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const file = this.#pathOf(key);
    try {
      const buffer = await fs.readFile(file);
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array | undefined> {
    const file = this.#pathOf(key);
    checkByteRange(key, start, end);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    try {
      const { size } = await handle.stat();
      const from = Math.min(start, size);
      const bytes = new Uint8Array(Math.min(end, size) - from);
      let filled = 0;
      // One read may return fewer bytes than asked for; keep reading until the range is complete.
      while (filled < bytes.length) {
        const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, from + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === bytes.length ? bytes : bytes.slice(0, filled);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    } finally {
      await handle.close();
    }
  }

  async exists(key: string): Promise<boolean> {
    const file = this.#pathOf(key);
    try {
      return (await fs.stat(file)).isFile();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    const files = keys.map((key) => this.#pathOf(key));
    for (const file of files) {
      try {
        await fs.unlink(file);
      } catch (error) {
        if (isMissing(error)) continue;
        throw error;
      }
      await this.#pruneEmptyDirs(path.dirname(file));
    }
  }

  /** Removes `dir` and its parents while they are empty, so deleted prefixes leave no litter. */
  async #pruneEmptyDirs(dir: string): Promise<void> {
    while (dir !== this.#root && dir.startsWith(this.#rootWithSep)) {
      try {
        await fs.rmdir(dir);
      } catch {
        // Not empty (another key, or a write in flight), or already gone: either way, stop here.
        return;
      }
      dir = path.dirname(dir);
    }
  }

  async list(prefix: string): Promise<string[]> {
    // Only the directory part of the prefix is walked; the last, partial segment is a filter.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash);
    // A prefix no valid key can start with (`../`, `/x`, `a//`) lists nothing, and must not be
    // allowed to walk outside the root.
    if (prefix.includes('\\') || prefix.includes('\0')) return [];
    if (slash >= 0 && !isValidBlobKey(dirKey)) return [];
    const keys: string[] = [];
    await this.#walk(dirKey === '' ? this.#root : path.join(this.#root, ...dirKey.split('/')), dirKey, prefix, keys);
    return keys.sort();
  }

  async #walk(dir: string, dirKey: string, prefix: string, out: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (error) {
      // The directory may not exist, or be pruned by a concurrent delete while we walk.
      if (isMissing(error)) return;
      throw error;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_PREFIX)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) {
          await this.#walk(path.join(dir, entry.name), key, prefix, out);
        }
      } else if (entry.isFile() && key.startsWith(prefix)) {
        out.push(key);
      }
    }
  }
}
