import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { SluiceError } from '../core/errors.ts';
import type { JsonValue, MetaItem, MetaStore } from '../ports/index.ts';
import { type PutCondition, putConditionHolds } from './memoryMetaStore.ts';

const ITEM_SUFFIX = '.json';
const LOCK_SUFFIX = '.lock';
const TEMP_PREFIX = '.tmp-';

/** How long a writer waits for a key's lock before giving up. */
const LOCK_WAIT_MS = 5_000;
/**
 * A lock older than this was left by a writer that died inside its critical section (which takes
 * milliseconds), so it may be broken.
 */
const STALE_LOCK_MS = 10_000;
const MAX_BACKOFF_MS = 50;

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

/** A held lock: its path and the inode of the file we created, to release only our own lock. */
type Lock = { readonly path: string; readonly ino: number };

/**
 * A {@link MetaStore} on a local directory: one JSON file per item (`encodeURIComponent(key).json`).
 *
 * Conditional writes are safe between processes and worker threads sharing the directory: a writer
 * takes an exclusive lock file for the key (`open(…, 'wx')` is atomic), checks the condition
 * against the item file, writes a temporary file and renames it over the item. Readers take no
 * lock because the rename replaces the item atomically. A lock left behind by a writer that died
 * is broken after {@link STALE_LOCK_MS}. Durable against process crashes, not power loss (no fsync).
 * Keys differing only in letter case collide on case-insensitive filesystems (macOS, Windows).
 *
 * @example
 * ```ts
 * const meta = new FsMetaStore('.sluice/wordcount/meta');
 * const cur = await meta.get('checkpoint');
 * await meta.put('checkpoint', { t: 2000 }, { expectedVersion: cur?.version ?? 0, epoch: 3 });
 * ```
 */
export class FsMetaStore implements MetaStore {
  readonly #root: string;
  /** Writers of this instance queue per key, so they do not poll each other's lock files. */
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(rootDir: string) {
    this.#root = path.resolve(rootDir);
  }

  #itemPath(key: string): string {
    return path.join(this.#root, encodeURIComponent(key) + ITEM_SUFFIX);
  }

  async get<T extends JsonValue = JsonValue>(key: string): Promise<MetaItem<T> | undefined> {
    return (await this.#read(key)) as MetaItem<T> | undefined;
  }

  async put(key: string, value: JsonValue, condition: PutCondition): Promise<number | undefined> {
    // Serialise before taking the lock: a value JSON cannot hold fails without blocking anyone.
    const pending = { key, version: 0, epoch: condition.epoch, value };
    JSON.stringify(pending);
    return this.#locked(key, async () => {
      const stored = await this.#read(key);
      if (!putConditionHolds(stored, condition)) return undefined;
      const version = (stored?.version ?? 0) + 1;
      await this.#writeItem(key, { ...pending, version });
      return version;
    });
  }

  async delete(key: string, condition: { epoch: number }): Promise<void> {
    await this.#locked(key, async () => {
      const stored = await this.#read(key);
      if (stored === undefined || stored.epoch > condition.epoch) return;
      await fs.rm(this.#itemPath(key), { force: true });
    });
  }

  async list(prefix: string): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.#root);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return [];
      throw error;
    }
    const keys: string[] = [];
    for (const name of names) {
      // Lock files end in `.lock` and temporary files carry no suffix, so neither lists.
      if (!name.endsWith(ITEM_SUFFIX)) continue;
      let key: string;
      try {
        key = decodeURIComponent(name.slice(0, -ITEM_SUFFIX.length));
      } catch {
        continue; // not a file of ours
      }
      if (key.startsWith(prefix)) keys.push(key);
    }
    return keys.sort();
  }

  async #read(key: string): Promise<MetaItem | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.#itemPath(key), 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
    try {
      return JSON.parse(text) as MetaItem;
    } catch (error) {
      throw new SluiceError(`meta item ${JSON.stringify(key)} in ${this.#root} is not valid JSON`, { cause: error });
    }
  }

  async #writeItem(key: string, item: MetaItem): Promise<void> {
    const temp = path.join(this.#root, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await fs.writeFile(temp, JSON.stringify(item));
      await fs.rename(temp, this.#itemPath(key));
    } catch (error) {
      await fs.rm(temp, { force: true }).catch(() => {});
      throw new SluiceError(`cannot write meta item ${JSON.stringify(key)} in ${this.#root}`, { cause: error });
    }
  }

  /** Runs `action` holding this instance's queue slot and the key's lock file. */
  async #locked<R>(key: string, action: () => Promise<R>): Promise<R> {
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const run = previous.then(async () => {
      // Every time, not once: a test or a user may remove the directory between writes.
      await fs.mkdir(this.#root, { recursive: true });
      const lock = await this.#acquire(key);
      try {
        return await action();
      } finally {
        await this.#release(lock);
      }
    });
    // The queue must go on after a failure, and must not keep settled promises of idle keys.
    const tail = run.catch(() => {});
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return run;
  }

  async #acquire(key: string): Promise<Lock> {
    const lockPath = path.join(this.#root, encodeURIComponent(key) + LOCK_SUFFIX);
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await fs.open(lockPath, 'wx');
        try {
          // Who holds the lock, for a human looking at a stuck directory.
          await handle.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
          return { path: lockPath, ino: (await handle.stat()).ino };
        } finally {
          await handle.close();
        }
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
      }
      if (await this.#breakIfStale(lockPath)) continue;
      if (Date.now() >= deadline) {
        throw new SluiceError(
          `timed out after ${LOCK_WAIT_MS} ms waiting for the lock of meta item ${JSON.stringify(key)} (${lockPath})`,
        );
      }
      // Exponential backoff with jitter, so contending writers do not retry in lock step.
      const cap = Math.min(MAX_BACKOFF_MS, 2 ** attempt);
      await delay(1 + Math.random() * cap);
    }
  }

  /**
   * Removes the lock at `lockPath` if it is stale; true when the caller should retry at once.
   * The lock is moved aside before it is deleted, and put back if what was moved turns out to be a
   * fresh lock another writer just took after a third one broke the stale one: with a plain
   * unlink, two writers that both saw the stale lock could each delete the other's new lock.
   */
  async #breakIfStale(lockPath: string): Promise<boolean> {
    let seen: Stats;
    try {
      seen = await fs.stat(lockPath);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return true; // released meanwhile
      throw error;
    }
    if (Date.now() - seen.mtimeMs <= STALE_LOCK_MS && !(await holderIsGone(lockPath, seen))) return false;
    const aside = path.join(this.#root, `${TEMP_PREFIX}stale-${randomBytes(8).toString('hex')}`);
    try {
      await fs.rename(lockPath, aside);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return true; // someone else broke it
      throw error;
    }
    try {
      const moved = await fs.stat(aside);
      if (moved.ino !== seen.ino || moved.mtimeMs !== seen.mtimeMs) {
        await fs.link(aside, lockPath).catch(() => {});
      }
    } finally {
      await fs.rm(aside, { force: true });
    }
    return true;
  }

  async #release(lock: Lock): Promise<void> {
    try {
      // Only delete the lock if it is still ours (it may have been broken as stale and retaken).
      if ((await fs.stat(lock.path)).ino === lock.ino) await fs.unlink(lock.path);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
    }
  }
}

/**
 * True when the lock's writer is known to be gone: a process of this host that no longer exists
 * (killed inside its critical section), or a lock file left empty for over a second (killed
 * between creating and writing it). Such a lock is broken at once instead of after
 * {@link STALE_LOCK_MS}, so a restarted job does not wait on its own dead predecessor.
 */
async function holderIsGone(lockPath: string, seen: Stats): Promise<boolean> {
  let text: string;
  try {
    text = await fs.readFile(lockPath, 'utf8');
  } catch {
    return false;
  }
  let holder: { pid?: unknown; host?: unknown };
  try {
    holder = JSON.parse(text) as { pid?: unknown; host?: unknown };
  } catch {
    return Date.now() - seen.mtimeMs > 1000;
  }
  if (holder.host !== hostname() || typeof holder.pid !== 'number' || holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return errorCode(error) === 'ESRCH';
  }
}
