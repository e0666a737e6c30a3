import { createHash } from 'node:crypto';
import { SluiceError } from '../core/errors.ts';
import type { BlobStore, JsonValue, MetaItem, MetaStore } from '../ports/index.ts';

/** Values whose JSON text is longer than this (UTF-8 bytes) go to a blob by default: 64 KiB. */
export const DEFAULT_SPILL_THRESHOLD_BYTES = 64 * 1024;

/** How many times `get` reads an item whose blob it cannot find before it gives up. */
const READ_ATTEMPTS = 4;

/** The key that marks a pointer. No protocol record has a `$` key; a value that has one is spilled anyway. */
const MARK = '$spilled';

/**
 * What the MetaStore holds in place of a value that spilled: the blob, and enough to check it.
 * `previous` is the blob of the version this one replaced, kept alive one put longer for readers
 * that read the older pointer just before the replacement.
 */
type SpillPointer = {
  readonly [MARK]: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly previous?: string;
};

/** What this store last saw of a key (through its own get or put): its version and the blobs it keeps alive. */
interface Known {
  readonly version: number;
  readonly blob?: string;
  readonly previous?: string;
}

/** Options of {@link SpillingMetaStore}. */
export interface SpillingMetaStoreOptions {
  /** Values whose JSON text is longer than this many UTF-8 bytes go to a blob. @default 65536 (64 KiB) */
  readonly thresholdBytes?: number;
  /**
   * Where a failed clean-up of old spill blobs is reported. The put or delete it followed did
   * apply, and its caller must learn that (the conditional-write protocol depends on it), so the
   * error is reported here instead of thrown; the blob is left behind, which costs storage only.
   * @default console.warn
   */
  readonly warn?: (line: string) => void;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A blob name every blob store accepts, for any item key: each segment of the key is
 * percent-encoded, and the segments a file system would merge (`''`, `.`, `..`) get spellings
 * `encodeURIComponent` never produces. Different keys never share a name, so one key's blobs are
 * never another's.
 */
function keyPath(key: string): string {
  return key
    .split('/')
    .map((segment) => (segment === '' ? '%' : segment === '.' || segment === '..' ? '%2E'.repeat(segment.length) : encodeURIComponent(segment)))
    .join('/');
}

/**
 * A {@link MetaStore} that keeps large values in a {@link BlobStore}, around a MetaStore that
 * cannot hold them (a DynamoDB item stops at 400 KB). A value whose JSON text is over
 * `thresholdBytes` is written as a blob, and the item holds a small pointer to it with the same
 * condition; smaller values go straight through, so items written before this store existed read
 * back unchanged. Batch records and the checkpoint grow with the input (a Kinesis stream of 2,000
 * shards, a watched S3 prefix of 20,000 files) and would otherwise stop the job for ever.
 *
 * - **Writes.** The blob is written first (a failed blob write throws, and nothing reaches the
 *   MetaStore), then the pointer with the caller's condition; `put` returns the MetaStore's answer
 *   unchanged: the new version, or `undefined` when the condition failed. The blob name,
 *   `meta/<key>/e<epoch>-<sha256>.json`, is content-addressed within the writer's epoch: whoever
 *   writes that name writes those bytes, so a duplicated or late write is harmless. The blob of a
 *   failed put is left in place: a put whose response was lost may have applied after all.
 * - **Reads.** `get` reads the item, then its blob, and checks the blob's length and SHA-256. A
 *   blob that is missing was deleted after a later put replaced the pointer, so the item is read
 *   again (up to 4 times); an item that still points at a missing blob is an error that names both.
 * - **Garbage.** Each stored version keeps two blobs alive: its own and the one of the version it
 *   replaced (the pointer's `previous`). When a put wins, the blobs the replaced version kept and
 *   the new one does not are deleted: a blob outlives the put that replaced it by one more put, so
 *   a reader that read the older pointer finds the blob unless two puts passed it by, and then its
 *   re-read finds the newer item. (A value that falls back under the threshold keeps no blob, so
 *   both go at once.) The store knows what the replaced version kept only if it saw that version
 *   (its own get or put returned it, as the engine always reads or writes a key before replacing
 *   it); otherwise nothing is deleted, and neither is the blob of a failed put (storage only).
 *   `delete` removes the item, then, if it is really gone (the delete may have been fenced), the
 *   blobs it kept (read from the item first if this store has not seen it).
 * - **Why deleting is safe for writers.** Every put writes its blob again before it points at it,
 *   so a deletion can only hurt a put of the same name that overlaps it. Names carry the writer's
 *   epoch, and a coordinator's epoch is its own (the lease hands each out once); a put that can
 *   still win after ours has our epoch or a higher one (the stored epoch never goes down), and a
 *   higher one names other blobs. So an overlap needs one coordinator putting one key twice at
 *   once, which the engine never does: it awaits each put, and `put` returns after its clean-up.
 *   `delete` assumes likewise that nobody re-creates the key while it runs (the engine deletes
 *   only batch records that `remember` no longer reaches, and never the checkpoint).
 *
 * `list` is passed through. A pointer is an object with a `$spilled` key; since any value with
 * that key is spilled whatever its size, an inline value is never mistaken for one.
 *
 * @example
 * ```ts
 * const meta = new SpillingMetaStore(new DynamoMetaStore({ client, table: 'sluice-meta', job: 'clicks' }), blobs);
 * await meta.put('checkpoint', checkpointOf2000Shards, { expectedVersion: 0, epoch: 1 }); // 1: the value is in a blob
 * (await meta.get('checkpoint'))?.value; // the checkpoint again, read back from the blob
 * ```
 */
export class SpillingMetaStore implements MetaStore {
  readonly #meta: MetaStore;
  readonly #blobs: BlobStore;
  readonly #threshold: number;
  readonly #warn: (line: string) => void;
  /** What this store last saw of each key, to know which blobs a put replaces. */
  readonly #seen = new Map<string, Known>();

  constructor(meta: MetaStore, blobs: BlobStore, options: SpillingMetaStoreOptions = {}) {
    const threshold = options.thresholdBytes ?? DEFAULT_SPILL_THRESHOLD_BYTES;
    if (!Number.isSafeInteger(threshold) || threshold < 0) {
      throw new SluiceError(`SpillingMetaStore: thresholdBytes must be a whole number >= 0, got ${String(threshold)}`);
    }
    this.#meta = meta;
    this.#blobs = blobs;
    this.#threshold = threshold;
    this.#warn = options.warn ?? ((line) => console.warn(line));
  }

  async get<T extends JsonValue = JsonValue>(key: string): Promise<MetaItem<T> | undefined> {
    let item: MetaItem | undefined;
    let pointer: SpillPointer | undefined;
    for (let attempt = 1; attempt <= READ_ATTEMPTS; attempt++) {
      item = await this.#meta.get(key);
      if (item === undefined) {
        this.#seen.delete(key);
        return undefined;
      }
      pointer = this.#pointerOf(key, item.value);
      this.#remember(key, item.version, pointer);
      if (pointer === undefined) return item as MetaItem<T>;
      const bytes = await this.#blobs.get(pointer[MARK]);
      // Missing: a put replaced the pointer and collected the blob since we read the item.
      if (bytes === undefined) continue;
      if (bytes.length !== pointer.bytes || sha256Hex(bytes) !== pointer.sha256) {
        throw new SluiceError(
          `meta item ${key} is stored in blob ${pointer[MARK]}, whose content does not match the item (${bytes.length} bytes instead of ${pointer.bytes}, or another SHA-256); the blob was changed outside Sluice. Restore the object, or delete the item ${key} so the job rebuilds it.`,
          batchContext(key),
        );
      }
      return { key, version: item.version, epoch: item.epoch, value: JSON.parse(fromUtf8.decode(bytes)) as T };
    }
    throw new SluiceError(
      `meta item ${key} (version ${item!.version}) is stored in blob ${pointer![MARK]}, which is missing: the item still points there after ${READ_ATTEMPTS} reads. ` +
        `The blob was deleted outside Sluice (a lifecycle rule or a manual delete on the state store's meta/ prefix) or lost. ` +
        `Restore the object if the bucket keeps old versions; otherwise delete the item ${key} so the job rebuilds it (a batch record is cut again; without a checkpoint the job starts afresh).`,
      batchContext(key),
    );
  }

  async put(key: string, value: JsonValue, condition: { expectedVersion: number | 'any'; epoch: number }): Promise<number | undefined> {
    const text = JSON.stringify(value);
    const bytes = utf8.encode(text);
    // The version this put replaces if it wins, if we saw it: 'any' replaces whatever is there.
    const seen = this.#seen.get(key);
    const replaced = seen !== undefined && (condition.expectedVersion === 'any' || seen.version === condition.expectedVersion) ? seen : undefined;
    let pointer: SpillPointer | undefined;
    if (bytes.length > this.#threshold || (isObject(value) && MARK in value)) {
      const sha256 = sha256Hex(bytes);
      const blob = `meta/${keyPath(key)}/e${condition.epoch}-${sha256}.json`;
      await this.#blobs.put(blob, bytes);
      // Rewriting the same content names the same blob: the one before it stays the previous.
      const previous = replaced?.blob === blob ? replaced.previous : replaced?.blob;
      pointer = { [MARK]: blob, bytes: bytes.length, sha256, ...(previous === undefined ? {} : { previous }) };
    }
    let version: number | undefined;
    try {
      version = await this.#meta.put(key, pointer ?? value, condition);
    } finally {
      // Failed or unknown outcome: someone else's version may be there now.
      if (version === undefined) this.#seen.delete(key);
    }
    if (version === undefined) return undefined;
    this.#remember(key, version, pointer);
    // Only if the version we knew is the one this put replaced (its version is one below ours).
    if (replaced !== undefined && replaced.version === version - 1) {
      const keep = new Set([pointer?.[MARK], pointer?.previous]);
      await this.#collect(key, [replaced.blob, replaced.previous].filter((b): b is string => b !== undefined && !keep.has(b)), `put of version ${version}`);
    }
    return version;
  }

  async delete(key: string, condition: { epoch: number }): Promise<void> {
    let known = this.#seen.get(key);
    if (known === undefined) {
      const item = await this.#meta.get(key);
      known = item === undefined ? undefined : this.#knownOf(item.version, this.#pointerOf(key, item.value));
    }
    this.#seen.delete(key);
    await this.#meta.delete(key, condition);
    const blobs = [known?.blob, known?.previous].filter((b): b is string => b !== undefined);
    if (blobs.length === 0) return;
    // The delete is fenced by a newer epoch without saying so: free the blobs only if the item is gone.
    if ((await this.#meta.get(key)) !== undefined) return;
    await this.#collect(key, blobs, 'delete');
  }

  list(prefix: string): Promise<string[]> {
    return this.#meta.list(prefix);
  }

  /** The pointer an item holds, if it holds one; a `$spilled` value of another shape is damage, said so. */
  #pointerOf(key: string, value: JsonValue): SpillPointer | undefined {
    if (!isObject(value) || !(MARK in value)) return undefined;
    const p = value as Partial<Record<keyof SpillPointer, unknown>>;
    if (typeof p[MARK] !== 'string' || typeof p.bytes !== 'number' || typeof p.sha256 !== 'string' || (p.previous !== undefined && typeof p.previous !== 'string')) {
      throw new SluiceError(`meta item ${key} holds a malformed spill pointer: ${JSON.stringify(value).slice(0, 300)}`, batchContext(key));
    }
    return value as unknown as SpillPointer;
  }

  #knownOf(version: number, pointer: SpillPointer | undefined): Known {
    return pointer === undefined ? { version } : { version, blob: pointer[MARK], ...(pointer.previous === undefined ? {} : { previous: pointer.previous }) };
  }

  #remember(key: string, version: number, pointer: SpillPointer | undefined): void {
    this.#seen.set(key, this.#knownOf(version, pointer));
  }

  /** Deletes blobs no item points at any more; a failure is reported, not thrown (see {@link SpillingMetaStoreOptions.warn}). */
  async #collect(key: string, blobs: string[], after: string): Promise<void> {
    if (blobs.length === 0) return;
    try {
      await this.#blobs.delete(blobs);
    } catch (e) {
      this.#warn(`meta item ${key}: could not delete its old spill blob(s) ${blobs.join(', ')} after a ${after}; they are left behind (storage only): ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** The batch time of a `batch/<t>` key, as error context. */
function batchContext(key: string): { batchTime?: number } {
  const m = /^batch\/(\d{15})$/.exec(key);
  return m ? { batchTime: Number(m[1]) } : {};
}
